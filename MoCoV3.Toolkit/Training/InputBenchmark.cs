using System.Diagnostics;
using MoCoV3.Augment;
using MoCoV3.Data;
using MoCoV3.Models;
using MoCoV3.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace MoCoV3.Training;

/// <summary>Result of timing the input pipeline alone (no model step).</summary>
/// <param name="HostViews">Whether the views were cut on the host from the original images (image files), or cropped on
/// the device from fixed-size images (in-memory data such as Fashion-MNIST).</param>
/// <param name="Cores">Logical processors of the machine (the per-core figures divide by it).</param>
/// <param name="HostImagesPerSecond">The loader alone: decode and crops (or the read) on its threads, nothing else.</param>
/// <param name="ImagesPerSecond">The whole pipeline: the loader, the copy to the device and the augmentation there.</param>
/// <param name="DataWaitShare">Share of the whole pipeline's time spent waiting for the loader.</param>
/// <param name="AugmentSecondsMedian">Median time of the device augmentation of one batch.</param>
public sealed record InputBenchResult(string Data, string Preset, int Batch, int Batches, string Device, int Cores, bool HostViews,
    double HostImagesPerSecond, double ImagesPerSecond, double DataWaitShare, double AugmentSecondsMedian, long PeakRssBytes);

/// <summary>
/// Times what feeds a pretraining step from a dataset, without the step: the prefetching loader (for image files, each
/// image decoded once and its two RandomResizedCrop views cut on the loader's threads) and the per-view colour
/// augmentation on the device, as <see cref="Pretrainer"/> does it. Compare with bench/jpeg_dataloader_reference.py
/// (torchvision's DataLoader doing all of it on worker processes).
/// </summary>
public static class InputBenchmark
{
    public static InputBenchResult Run(ModelPreset preset, IImageDataset data, int batch, int batches, string device = "cpu",
        string? libtorch = null, int? threads = null, long seed = 0)
    {
        ArgumentNullException.ThrowIfNull(data);
        ArgumentOutOfRangeException.ThrowIfLessThan(batches, 1);
        var dev = TorchRuntime.Initialize(device, libtorch, threads, training: true);
        if (data.Count < batch)
            throw new ArgumentException($"{data.Source}: {data.Count} images, fewer than one batch of {batch}");
        var views = data is IViewDataset { CanCutViews: true } ? new ViewCropping(new RandomResizedCrop(preset.Input.ImageSize, preset.Recipe.CropMin), seed) : null;
        var augmentation = MoCoAugmentation.FromPreset(preset);

        // The loader alone: one warm-up batch, then the timed ones.
        double hostSeconds;
        using (var loader = new PrefetchLoader(data, batch, seed, views: views))
        using (var stream = Batches(loader).GetEnumerator())
        {
            Next(stream).Dispose();
            var clock = Stopwatch.StartNew();
            for (int i = 0; i < batches; i++)
                Next(stream).Dispose();
            hostSeconds = clock.Elapsed.TotalSeconds;
        }

        // The whole pipeline: the loader feeding the device augmentation.
        double waited = 0, total;
        var augmentTimes = new List<double>();
        using (var loader = new PrefetchLoader(data, batch, seed + 1, views: views))
        using (var stream = Batches(loader).GetEnumerator())
        {
            Augment(Next(stream), 0);
            var clock = Stopwatch.StartNew();
            for (int i = 1; i <= batches; i++)
                waited += Augment(Next(stream), i);
            total = clock.Elapsed.TotalSeconds;
        }

        double Augment(ImageBatch b, long step)
        {
            using var batchData = b;
            using var scope = NewDisposeScope();
            var start = Stopwatch.StartNew();
            var (x1, x2) = b.View2 is Tensor view2
                ? augmentation.TwoCroppedViews(b.Pixels.to(dev), view2.to(dev), seed, step)
                : augmentation.TwoViews(b.Pixels.to(dev), seed, step);
            if (dev.type == DeviceType.CUDA) cuda.synchronize();
            if (step > 0) augmentTimes.Add(start.Elapsed.TotalSeconds);
            GC.KeepAlive(x1);
            GC.KeepAlive(x2);
            return b.WaitSeconds;
        }

        int images = batch * batches;
        return new InputBenchResult(data.Source, preset.Name, batch, batches, TorchRuntime.Describe(dev), Environment.ProcessorCount,
            views is not null, images / hostSeconds, images / total, waited / total, Median(augmentTimes),
            Process.GetCurrentProcess().PeakWorkingSet64);
    }

    private static ImageBatch Next(IEnumerator<ImageBatch> stream) =>
        stream.MoveNext() ? stream.Current : throw new InvalidOperationException("the loader ended");

    /// <summary>The loader's batches, epoch after epoch.</summary>
    private static IEnumerable<ImageBatch> Batches(PrefetchLoader loader)
    {
        for (int epoch = 0; ; epoch++)
            foreach (var b in loader.Epoch(epoch))
                yield return b;
    }

    private static double Median(List<double> values)
    {
        var sorted = values.Order().ToList();
        int n = sorted.Count;
        return n == 0 ? 0 : n % 2 == 1 ? sorted[n / 2] : 0.5 * (sorted[n / 2 - 1] + sorted[n / 2]);
    }
}
