using static TorchSharp.torch;

namespace MoCoV3.Checkpoints;

/// <summary>A linear classifier found next to an imported backbone (timm <c>head</c>, torchvision <c>fc</c>): <c>[classes, features]</c> weight and optional bias.</summary>
public sealed record ClassifierHead(Tensor Weight, Tensor? Bias) : IDisposable
{
    public long Classes => Weight.shape[0];

    public void Dispose()
    {
        Weight.Dispose();
        Bias?.Dispose();
    }
}
