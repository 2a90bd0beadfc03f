using System.Diagnostics;
using Microsoft.ML.OnnxRuntime;
using MoCoV3.Models;
using static TorchSharp.torch;

namespace MoCoV3.Export;

/// <summary>
/// Throughput of one backbone on the CPU: ONNX Runtime (exported model) and TorchSharp eager, same batch, over all
/// timed batches; <see cref="OrtBestImagesPerSecond"/> and <see cref="TorchBestImagesPerSecond"/> are from the fastest
/// single batch of each, which is less disturbed by other work on a shared machine.
/// </summary>
public sealed record BenchmarkResult(double OrtImagesPerSecond, double TorchImagesPerSecond, int Batch, int Batches, int Threads)
{
    public double OrtBestImagesPerSecond { get; init; }
    public double TorchBestImagesPerSecond { get; init; }

    public double Speedup => OrtImagesPerSecond / TorchImagesPerSecond;

    public override string ToString() => string.Create(System.Globalization.CultureInfo.InvariantCulture,
        $"ORT {OrtImagesPerSecond:F1} img/s (best batch {OrtBestImagesPerSecond:F1}), TorchSharp {TorchImagesPerSecond:F1} img/s " +
        $"(best batch {TorchBestImagesPerSecond:F1}), ORT/Torch {Speedup:F2}x, batch {Batch} x {Batches}, {Threads} threads");
}

/// <summary>Times ONNX Runtime against TorchSharp inference (report only, not a test).</summary>
public static class OnnxBenchmark
{
    /// <summary>ONNX Runtime options for CPU inference: all graph optimisations, one intra-op thread per core.</summary>
    public static SessionOptions TunedCpuOptions(int threads)
    {
        var options = new SessionOptions
        {
            GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
            ExecutionMode = ExecutionMode.ORT_SEQUENTIAL,
            IntraOpNumThreads = threads,
            InterOpNumThreads = 1,
        };
        return options;
    }

    /// <summary>
    /// Runs <paramref name="warmup"/> untimed and then <paramref name="batches"/> timed batches of random images through
    /// the exported model at <paramref name="onnxPath"/> (ORT, <see cref="TunedCpuOptions"/>) and through
    /// <paramref name="backbone"/> (TorchSharp eager, eval, no_grad), and returns images per second for each.
    /// </summary>
    public static BenchmarkResult Run(string onnxPath, Backbone backbone, ModelPreset preset, int batch = 32, int batches = 3,
                                      int warmup = 1, int? threads = null)
    {
        ArgumentNullException.ThrowIfNull(backbone);
        ArgumentNullException.ThrowIfNull(preset);
        if (batch <= 0 || batches <= 0 || warmup < 0) throw new ArgumentException("batch and batches must be positive, warmup >= 0");
        int t = threads ?? Environment.ProcessorCount;

        using var pixelsTensor = TorchReference.RandomPixels(batch, preset.Channels, preset.ImageSize, seed: 0);
        float[] pixels = TensorData.ToFloatArray(pixelsTensor);

        (double Mean, double Best) ort;
        using (var options = TunedCpuOptions(t))
        using (var runner = new OnnxModelRunner(onnxPath, options))
            ort = Time(() => runner.Embed(pixels, batch), batch, batches, warmup);

        int oldThreads = get_num_threads();
        set_num_threads(t);
        try
        {
            var torchRate = Time(() => TorchReference.Embed(backbone, preset, pixelsTensor), batch, batches, warmup);
            return new BenchmarkResult(ort.Mean, torchRate.Mean, batch, batches, t)
            {
                OrtBestImagesPerSecond = ort.Best,
                TorchBestImagesPerSecond = torchRate.Best,
            };
        }
        finally
        {
            set_num_threads(oldThreads);
        }
    }

    private static (double Mean, double Best) Time(Action run, int batch, int batches, int warmup)
    {
        for (int i = 0; i < warmup; i++) run();
        double total = 0, best = double.PositiveInfinity;
        for (int i = 0; i < batches; i++)
        {
            long start = Stopwatch.GetTimestamp();
            run();
            double seconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
            total += seconds;
            best = Math.Min(best, seconds);
        }
        return (batch * batches / total, batch / best);
    }
}
