using MoCoV3.Inference;
using System.Diagnostics;
using MoCoV3.Export.Quantization;
using MoCoV3.Models;
using Onnx;
using static TorchSharp.torch;

namespace MoCoV3.Export;

/// <summary>Times ONNX Runtime against TorchSharp inference (report only, not a test).</summary>
public static class OnnxBenchmark
{
    public const string OrtDefaultRow = "ORT fp32, default options";
    public const string OrtTunedRow = "ORT fp32, tuned options";
    public const string OrtInt8Row = "ORT int8-dynamic, tuned";

    /// <summary>
    /// Runs <paramref name="warmup"/> untimed and then <paramref name="batches"/> timed batches of the same random images
    /// through each variant in turn: the exported model at <paramref name="onnxPath"/> in ORT with its default options and
    /// with <see cref="OrtCpuOptions"/>; with <paramref name="int8"/>, that model quantised in memory by
    /// <see cref="DynamicInt8Quantizer"/> (tuned options); and <paramref name="backbone"/> in TorchSharp eager (eval, no_grad).
    /// </summary>
    public static BenchmarkResult Run(string onnxPath, Backbone backbone, ModelPreset preset, int batch = 32, int batches = 3,
                                      int warmup = 1, int? threads = null, bool int8 = false)
    {
        ArgumentNullException.ThrowIfNull(backbone);
        ArgumentNullException.ThrowIfNull(preset);
        if (batch <= 0 || batches <= 0 || warmup < 0) throw new ArgumentException("batch and batches must be positive, warmup >= 0");
        int t = threads ?? OrtCpuOptions.PhysicalCores;

        using var pixelsTensor = TorchReference.RandomPixels(batch, preset.Input.Channels, preset.Input.ImageSize, seed: 0);
        float[] pixels = TensorData.ToFloatArray(pixelsTensor);
        var rows = new List<BenchmarkRow>();

        byte[]? quantized = null;
        if (int8)
        {
            var model = ModelProto.Parser.ParseFrom(File.ReadAllBytes(onnxPath));
            quantized = Google.Protobuf.MessageExtensions.ToByteArray(DynamicInt8Quantizer.Quantize(model).Model);
        }

        using (var defaults = OrtCpuOptions.Default())
        using (var runner = new OnnxModelRunner(onnxPath, defaults))
            rows.Add(Time(OrtDefaultRow, () => runner.Embed(pixels, batch), batch, batches, warmup));
        using (var tuned = OrtCpuOptions.Create(t))
        {
            using (var runner = new OnnxModelRunner(onnxPath, tuned))
                rows.Add(Time(OrtTunedRow, () => runner.Embed(pixels, batch), batch, batches, warmup));
            if (quantized is not null)
            {
                using var runner = new OnnxModelRunner(quantized, tuned);
                rows.Add(Time(OrtInt8Row, () => runner.Embed(pixels, batch), batch, batches, warmup));
            }
        }

        int oldThreads = get_num_threads();
        set_num_threads(t);
        try
        {
            rows.Add(Time(BenchmarkResult.TorchRow, () => TorchReference.Embed(backbone, preset, pixelsTensor), batch, batches, warmup));
        }
        finally
        {
            set_num_threads(oldThreads);
        }
        return new BenchmarkResult(rows, batch, batches, t);
    }

    private static BenchmarkRow Time(string name, Action run, int batch, int batches, int warmup)
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
        return new BenchmarkRow(name, batch * batches / total, batch / best);
    }
}
