using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MoCoV3.Training;

/// <summary>
/// <c>--clip-grad MAX</c>: before the optimiser step, all gradients are scaled together so that their joint L2 norm is at
/// most MAX (PyTorch's clip_grad_norm_; MMSelfSup uses 5.0 for ViT-L). The paper (§4.2) found clipping helps only with a
/// very small threshold, so it is off by default. Keeps the norm it measured, so the log shows the gradient before clipping.
/// Gradients packed in one flat tensor (<see cref="Optim.ParameterBuffer"/>) are measured and scaled with one kernel each.
/// </summary>
public sealed class GradientClipping
{
    public GradientClipping(double maxNorm)
    {
        if (!(maxNorm > 0)) throw new ArgumentException($"--clip-grad must be positive, got {maxNorm}");
        MaxNorm = maxNorm;
    }

    public double MaxNorm { get; }

    /// <summary>Joint gradient norm before the last <see cref="Apply"/>.</summary>
    public double LastNorm { get; private set; }

    /// <summary>Factor the last <see cref="Apply"/> multiplied the gradients by (1 when they were within the limit).</summary>
    public double LastScale { get; private set; } = 1;

    public void Apply(IReadOnlyList<Parameter> parameters)
    {
        LastNorm = WatchedLayers.GradNorm(parameters);
        LastScale = LastNorm > MaxNorm ? MaxNorm / (LastNorm + 1e-6) : 1;
        if (LastScale == 1) return;
        using var _ = no_grad();
        // Packed gradients (an optimiser over a ParameterBuffer): one kernel over the flat tensor.
        using (var flat = Optim.ParameterBuffer.FlatGradientsOf(parameters))
        {
            if (flat is not null)
            {
                flat.mul_(LastScale);
                return;
            }
        }
        foreach (var p in parameters) p.grad?.mul_(LastScale);
    }
}
