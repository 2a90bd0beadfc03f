using MoCoV3.Checkpoints;
using MoCoV3.Method;
using MoCoV3.Models;
using static TorchSharp.torch;

namespace MoCoV3.Training;

/// <summary>
/// How far two pretraining runs of the same preset and steps are apart (e.g. 2 ranks against 1 at the same global batch):
/// per-step loss and gradient-norm relative differences from their metrics.csv, and the largest weight and BatchNorm
/// statistic differences of their checkpoints against the largest weight and statistic.
/// </summary>
public static class RunComparison
{
    public sealed record Result(int Steps, double FirstLoss, double LastLoss, double LossRelativeDiff, double GradNormRelativeDiff,
                                double WeightMaxDiff, double WeightMaxAbs, string WorstParameter, double BufferMaxDiff, double BufferMaxAbs)
    {
        /// <summary>
        /// The CPU acceptance test's bounds on losses (1e-4 relative) and on weights and statistics (1e-3 of their largest).
        /// The gradient norm is reported, not bounded: with the full vit-tiny-fmnist preset, 2 CPU ranks against one gave losses
        /// equal to 1.3e-7 but a step-3 gradient norm 0.7% apart (components whose gradient is rounding noise).
        /// </summary>
        public bool WithinCpuBounds => LossRelativeDiff <= 1e-4 && WeightMaxDiff <= 1e-3 * WeightMaxAbs
                                       && BufferMaxDiff <= 1e-3 * Math.Max(BufferMaxAbs, 1e-12);
    }

    /// <summary>Compares the runs in folders <paramref name="reference"/> and <paramref name="other"/>.</summary>
    /// <exception cref="InvalidOperationException">The runs logged different steps.</exception>
    public static Result Compare(string reference, string other)
    {
        var a = MetricsLog.Read(Path.Combine(reference, "metrics.csv"));
        var b = MetricsLog.Read(Path.Combine(other, "metrics.csv"));
        if (a.Count == 0 || !a.Select(r => r.Step).SequenceEqual(b.Select(r => r.Step)))
            throw new InvalidOperationException($"{reference} and {other} logged different steps ({a.Count} and {b.Count} rows)");
        double loss = a.Zip(b).Max(p => Math.Abs(p.Second.Loss - p.First.Loss) / Math.Abs(p.First.Loss));
        double grad = a.Zip(b).Max(p => Math.Abs(p.Second.GradNorm - p.First.GradNorm) / Math.Max(Math.Abs(p.First.GradNorm), 1e-12));
        using var x = Load(reference);
        using var y = Load(other);
        var (weightDiff, weightScale, worst) = Diff(Floats(x.named_parameters().Select(p => (p.name, (Tensor)p.parameter))),
                                                    Floats(y.named_parameters().Select(p => (p.name, (Tensor)p.parameter))));
        var (bufferDiff, bufferScale, _) = Diff(Floats(x.named_buffers()), Floats(y.named_buffers()));
        return new Result(a.Count, a[0].Loss, a[^1].Loss, loss, grad, weightDiff, weightScale, worst, bufferDiff, bufferScale);
    }

    private static MoCo Load(string dir)
    {
        string path = Path.Combine(dir, CheckpointFile.DefaultName);
        var model = new MoCo(CheckpointFile.ReadHeader(path).Preset, BackboneFactory.Create);
        CheckpointFile.Load(path, model, null);
        return model;
    }

    private static Dictionary<string, Tensor> Floats(IEnumerable<(string Name, Tensor Value)> tensors) =>
        tensors.Where(t => t.Value.is_floating_point()).ToDictionary(t => t.Name, t => t.Value);

    private static (double MaxDiff, double MaxAbs, string Worst) Diff(Dictionary<string, Tensor> a, Dictionary<string, Tensor> b)
    {
        double maxDiff = 0, maxAbs = 0;
        string worst = "";
        foreach (var (name, value) in a)
        {
            using var x = value.to_type(ScalarType.Float64);
            using var y = b[name].to_type(ScalarType.Float64);
            double d = (x - y).abs().max().item<double>();
            maxAbs = Math.Max(maxAbs, x.abs().max().item<double>());
            if (d >= maxDiff) (maxDiff, worst) = (d, name);
        }
        return (maxDiff, maxAbs, worst);
    }
}
