using static TorchSharp.torch;

namespace MoCoV3.Models;

/// <summary>
/// Stochastic depth (Huang et al. 2016; timm's <c>DropPath</c>): in training, each sample's residual branch is
/// dropped with probability <see cref="Rate"/> and the kept ones are scaled by 1 / (1 − rate), so the expectation
/// is unchanged. In eval mode, or with rate 0 (the pretraining default), the branch passes through untouched —
/// the same tensor, so pretraining is bit-for-bit what it was without this module.
/// </summary>
public sealed class DropPath : nn.Module<Tensor, Tensor>
{
    private double rate;

    public DropPath(double rate = 0) : base(nameof(DropPath)) => Rate = rate;

    /// <summary>Probability of dropping the branch of one sample, in [0, 1).</summary>
    public double Rate
    {
        get => rate;
        set
        {
            if (!(value is >= 0 and < 1)) throw new ArgumentOutOfRangeException(nameof(value), value, "drop path rate must be in [0, 1)");
            rate = value;
        }
    }

    public override Tensor forward(Tensor x)
    {
        if (rate == 0 || !training) return x;
        double keep = 1 - rate;
        // One Bernoulli(keep) draw per sample, broadcast over the other dimensions.
        var shape = new long[x.dim()];
        shape[0] = x.shape[0];
        for (int i = 1; i < shape.Length; i++) shape[i] = 1;
        using var mask = empty(shape, x.dtype, x.device).bernoulli_(keep);
        return x * mask / keep;
    }
}
