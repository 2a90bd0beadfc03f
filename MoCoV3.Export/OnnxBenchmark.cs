using System.Diagnostics;
using Microsoft.ML.OnnxRuntime;
using MoCoV3.Models;
using static TorchSharp.torch;

namespace MoCoV3.Export;

/// <summary>Throughput of one backbone on the CPU: ONNX Runtime (exported model) and TorchSharp eager, same batch.</summary>
public sealed record BenchmarkResult(double OrtImagesPerSecond, double TorchImagesPerSecond, int Batch, int Batches, int Threads)
{
    public double Speedup => OrtImagesPerSecond / TorchImagesPerSecond;

    public override string ToString() => FormattableString.Invariant(
        $"ORT {OrtImagesPerSecond:F1} img/s, TorchSharp {TorchImagesPerSecond:F1} img/s ({Speedup:F2}x), batch {Batch} x {Batches}, {Threads} threads");
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

        double ort;
        using (var options = TunedCpuOptions(t))
        using (var runner = new OnnxModelRunner(onnxPath, options))
        {
            for (int i = 0; i < warmup; i++) runner.Embed(pixels, batch);
            var watch = Stopwatch.StartNew();
            for (int i = 0; i < batches; i++) runner.Embed(pixels, batch);
            ort = batch * batches / watch.Elapsed.TotalSeconds;
        }

        int oldThreads = get_num_threads();
        set_num_threads(t);
        try
        {
            for (int i = 0; i < warmup; i++) TorchReference.Embed(backbone, preset, pixelsTensor);
            var watch = Stopwatch.StartNew();
            for (int i = 0; i < batches; i++) TorchReference.Embed(backbone, preset, pixelsTensor);
            double torchRate = batch * batches / watch.Elapsed.TotalSeconds;
            return new BenchmarkResult(ort, torchRate, batch, batches, t);
        }
        finally
        {
            set_num_threads(oldThreads);
        }
    }
}
