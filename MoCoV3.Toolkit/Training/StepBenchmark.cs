using System.Diagnostics;
using MoCoV3.Augment;
using MoCoV3.Data;
using MoCoV3.Method;
using MoCoV3.Models;
using MoCoV3.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace MoCoV3.Training;

/// <summary>Result of timing full MoCo v3 steps on synthetic data.</summary>
/// <param name="Amp">Compute type of the forward pass: <c>fp32</c> or <c>bf16</c> (autocast).</param>
/// <param name="PeakRssBytes">Peak resident memory of the process.</param>
/// <param name="PeakDeviceBytes">CUDA: peak device memory in use (see <see cref="CudaMemory"/>); null on CPU.</param>
/// <param name="Data">Where the batches came from: <c>synthetic</c>, or the dataset read through the prefetching loader.</param>
/// <param name="DataWaitShare">Share of the timed steps' wall time spent waiting for the loader (0 for synthetic data).</param>
/// <param name="Update">How the momentum update and the optimiser ran: <c>packed</c> (flat buffers) or <c>per-parameter</c>.</param>
/// <param name="StepGflopsPerImage">Model FLOPs of one step per image (<see cref="StepFlops"/>; ViT presets only).</param>
/// <param name="AchievedTflops">Those FLOPs times images per second.</param>
/// <param name="Mfu">Model FLOPs utilisation: <paramref name="AchievedTflops"/> over the peak given to the benchmark.</param>
/// <param name="Profile">With profiling: the update phases timed on their own after the steps.</param>
public sealed record BenchResult(string Preset, int Batch, string Device, int Threads, int Steps, double StepSecondsMedian,
    double StepSecondsMin, double ImagesPerSecond, double AugmentSecondsMedian, long PeakRssBytes, string Amp = "fp32",
    long? PeakDeviceBytes = null, string Data = "synthetic", double DataWaitShare = 0, string Update = "packed",
    double? StepGflopsPerImage = null, double? AchievedTflops = null, double? Mfu = null, UpdateProfile? Profile = null);

/// <summary>
/// Median seconds of the parts of a step outside forward and backward, each timed alone (synchronised) on the model and
/// gradients the benchmark left behind: the momentum update of f_k, the optimiser's zero_grad and step, and gradient
/// clipping (<c>--clip-grad</c>, made to scale every gradient).
/// </summary>
public sealed record UpdateProfile(double MomentumUpdateSeconds, double ZeroGradSeconds, double OptimizerStepSeconds, double ClipSeconds)
{
    public double TotalSeconds => MomentumUpdateSeconds + ZeroGradSeconds + OptimizerStepSeconds + ClipSeconds;
}

/// <summary>
/// Times the full MoCo v3 step — both crops through f_q and the predictor, the momentum update and both crops
/// through f_k, the symmetric loss, backward and the optimiser step — on synthetic images, as
/// <c>shared/bench/mocov3_step_reference.py</c> does for PyTorch. With <c>augment</c>, the batched
/// augmentation of a uint8 batch is timed too and counted in the step. With a <c>data</c> set, the step is the real
/// training step instead: batches from the prefetching loader (the wait for one counted in the step), copied to the
/// device, augmented there — what <c>pretrain</c> does, so the two numbers show what the input pipeline costs.
/// </summary>
public static class StepBenchmark
{
    public static BenchResult Run(ModelPreset preset, int batch, int steps, int warmup = 2, string device = "cpu",
        string? libtorch = null, int? threads = null, bool augment = false, long seed = 0, ScalarType? amp = null,
        IImageDataset? data = null, bool perParameter = false, bool profile = false, double? peakTflops = null)
    {
        var dev = TorchRuntime.Initialize(device, libtorch, threads, training: true);
        manual_seed(seed);
        using var model = new MoCo(preset, BackboneFactory.Create);
        model.to(dev);
        model.train();
        using var optimizer = TrainStep.CreateOptimizer(preset, model, Schedules.ScaledLearningRate(preset.Recipe.BaseLr, batch), packed: !perParameter);
        var augmentation = MoCoAugmentation.FromPreset(preset);
        using var pixels = randint(0, 256, [batch, preset.Input.Channels, preset.Input.ImageSize, preset.Input.ImageSize], dtype: ScalarType.Byte, device: dev);
        using var fixed1 = randn(batch, preset.Input.Channels, preset.Input.ImageSize, preset.Input.ImageSize, device: dev);
        using var fixed2 = randn(batch, preset.Input.Channels, preset.Input.ImageSize, preset.Input.ImageSize, device: dev);

        if (data is not null && data.Count < batch)
            throw new ArgumentException($"{data.Source}: {data.Count} images, fewer than one batch of {batch}");
        // Image files: the views are cut on the loader's threads, as in pretraining.
        var views = data is IViewDataset { CanCutViews: true } ? new ViewCropping(new RandomResizedCrop(preset.Input.ImageSize, preset.Recipe.CropMin), seed) : null;
        using var loader = data is null ? null : new PrefetchLoader(data, batch, seed, shuffle: true, dropLast: true, views: views);
        using var batches = loader is null ? null : Batches(loader).GetEnumerator();
        double waited = 0, timed = 0;

        bool cuda = dev.type == DeviceType.CUDA;
        long? peakDevice = null;
        var stepTimes = new List<double>();
        var augmentTimes = new List<double>();
        for (int i = 0; i < warmup + steps; i++)
        {
            using var scope = NewDisposeScope();
            Synchronize(dev);
            var clock = Stopwatch.StartNew();
            double wait = 0;
            Tensor x1, x2;
            if (batches is not null)
            {
                batches.MoveNext();
                using var real = batches.Current;
                wait = real.WaitSeconds;
                (x1, x2) = real.View2 is Tensor view2
                    ? augmentation.TwoCroppedViews(real.Pixels.to(dev), view2.to(dev), seed, i)
                    : augmentation.TwoViews(real.Pixels.to(dev), seed, i);
            }
            else
            {
                (x1, x2) = augment ? augmentation.TwoViews(pixels, seed, i) : (fixed1, fixed2);
            }
            Synchronize(dev);
            double augmentSeconds = clock.Elapsed.TotalSeconds;
            TrainStep.Run(model, optimizer, x1, x2, 1e-4, 0.99, amp: amp);
            Synchronize(dev);
            if (cuda && CudaMemory.UsedBytes() is long used) peakDevice = Math.Max(peakDevice ?? 0, used);
            if (i >= warmup)
            {
                stepTimes.Add(clock.Elapsed.TotalSeconds);
                augmentTimes.Add(augmentSeconds - wait);
                waited += wait;
                timed += clock.Elapsed.TotalSeconds;
            }
        }
        double median = Median(stepTimes);
        var updateProfile = profile ? Profile(model, optimizer, dev, Math.Max(steps, 3)) : null;
        double? flops = StepFlops.StepPerImage(preset);
        double? achieved = flops * batch / median / 1e12;
        return new BenchResult(preset.Name, batch, TorchRuntime.Describe(dev), get_num_threads(), steps, median, stepTimes.Min(),
            batch / median, Median(augmentTimes), Process.GetCurrentProcess().PeakWorkingSet64, amp is null ? "fp32" : "bf16", peakDevice,
            data?.Source ?? "synthetic", timed > 0 ? waited / timed : 0, perParameter ? "per-parameter" : "packed",
            flops / 1e9, achieved, peakTflops is double peak && peak > 0 ? achieved / peak : null, updateProfile);
    }

    /// <summary>Times the update phases alone, <paramref name="repeats"/> times each (they change the weights: run it last).</summary>
    private static UpdateProfile Profile(MoCo model, Optim.ITrainingOptimizer optimizer, Device dev, int repeats)
    {
        var clip = new GradientClipping(1e-9); // every gradient is scaled, the expensive path
        double Time(Action action)
        {
            var times = new List<double>();
            for (int i = 0; i < repeats; i++)
            {
                using var scope = NewDisposeScope();
                Synchronize(dev);
                var clock = Stopwatch.StartNew();
                action();
                Synchronize(dev);
                times.Add(clock.Elapsed.TotalSeconds);
            }
            return Median(times);
        }
        double momentum = Time(() => model.UpdateMomentumEncoder(0.99));
        double clipping = Time(() => clip.Apply(optimizer.Parameters));
        double step = Time(optimizer.Step);
        double zero = Time(optimizer.ZeroGrad);
        return new UpdateProfile(momentum, zero, step, clipping);
    }

    /// <summary>The loader's batches, epoch after epoch, for as many steps as asked.</summary>
    private static IEnumerable<ImageBatch> Batches(PrefetchLoader loader)
    {
        for (int epoch = 0; ; epoch++)
            foreach (var b in loader.Epoch(epoch))
                yield return b;
    }

    private static void Synchronize(Device device)
    {
        if (device.type == DeviceType.CUDA) cuda.synchronize();
    }

    private static double Median(List<double> values)
    {
        var sorted = values.Order().ToList();
        int n = sorted.Count;
        return n % 2 == 1 ? sorted[n / 2] : 0.5 * (sorted[n / 2 - 1] + sorted[n / 2]);
    }
}
