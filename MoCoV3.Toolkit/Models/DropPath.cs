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

    /// <summary>
    /// Null: the input is the whole batch. In a data-parallel run, the input's rows are [Offset, Offset + N) of a global batch
    /// of GlobalCount (this rank's slice): the draws are made for the whole global batch, as one process makes them (every
    /// rank's generator is seeded alike), and the slice's rows kept, so each sample is dropped as in a one-process run.
    /// </summary>
    public (int Offset, int GlobalCount)? Rows { get; set; }

    public override Tensor forward(Tensor x)
    {
        if (rate == 0 || !training) return x;
        double keep = 1 - rate;
        long local = x.shape[0];
        var (offset, n) = Rows ?? (0, (int)local);
        if (offset < 0 || offset + local > n)
            throw new ArgumentException($"drop path: rows [{offset}, {offset + local}) do not lie in a global batch of {n}");
        // One Bernoulli(keep) draw per sample, broadcast over the other dimensions.
        var shape = new long[x.dim()];
        shape[0] = n;
        for (int i = 1; i < shape.Length; i++) shape[i] = 1;
        using var drawn = empty(shape, x.dtype, x.device).bernoulli_(keep);
        using var mask = n == local ? drawn.alias() : drawn.narrow(0, offset, local);
        return x * mask / keep;
    }
}
