using MoCoV3.Inference;
using System.Globalization;
using System.Text;

namespace MoCoV3.Export;

/// <summary>One line of a <see cref="BenchmarkResult"/>: a runtime and model variant, its mean and best-batch images per second.</summary>
public sealed record BenchmarkRow(string Name, double ImagesPerSecond, double BestImagesPerSecond);

/// <summary>
/// Throughput of one backbone on the CPU, variant by variant, timed back to back on the same batch: ONNX Runtime with its
/// default options, with <see cref="OrtCpuOptions"/>, the int8 model when asked, and TorchSharp eager (the last row).
/// Mean over all timed batches; best = the fastest single batch, which is less disturbed by other work on a shared machine.
/// </summary>
public sealed record BenchmarkResult(IReadOnlyList<BenchmarkRow> Rows, int Batch, int Batches, int Threads)
{
    public const string TorchRow = "TorchSharp eager";

    public BenchmarkRow Torch => Row(TorchRow);

    public BenchmarkRow Row(string name) => Rows.FirstOrDefault(r => r.Name == name)
        ?? throw new KeyNotFoundException($"no benchmark row '{name}'");

    /// <summary>Images per second of <paramref name="name"/> over TorchSharp eager.</summary>
    public double Speedup(string name) => Row(name).ImagesPerSecond / Torch.ImagesPerSecond;

    public override string ToString()
    {
        var text = new StringBuilder();
        var inv = CultureInfo.InvariantCulture;
        int width = Math.Max(8, Rows.Max(r => r.Name.Length));
        text.AppendLine(inv, $"batch {Batch} x {Batches} timed, {Threads} threads");
        text.AppendLine(inv, $"{"variant".PadRight(width)}  {"img/s",8}  {"best",8}  {"vs Torch",8}");
        foreach (var r in Rows)
            text.AppendLine(inv, $"{r.Name.PadRight(width)}  {r.ImagesPerSecond,8:F1}  {r.BestImagesPerSecond,8:F1}  {r.ImagesPerSecond / Torch.ImagesPerSecond,7:F2}x");
        return text.ToString().TrimEnd();
    }
}
