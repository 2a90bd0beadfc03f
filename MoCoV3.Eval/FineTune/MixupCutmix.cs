using MoCoV3.Eval.Classification;
using static TorchSharp.torch;

namespace MoCoV3.Eval.FineTune;

/// <summary>One draw of <see cref="MixupCutmix"/>: the kind of mixing, λ (the weight of each image's own label),
/// and for CutMix the pasted box <c>[Top, Bottom) x [Left, Right)</c>.</summary>
public sealed record MixDraw(bool CutMix, double Lambda, int Top = 0, int Bottom = 0, int Left = 0, int Right = 0)
{
    /// <summary>No mixing.</summary>
    public static readonly MixDraw None = new(false, 1.0);
}

/// <summary>
/// Mixup (Zhang et al. 2018) and CutMix (Yun et al. 2019) as DeiT uses them (timm's <c>Mixup</c>, batch mode):
/// per batch, with probability <see cref="Prob"/>, either CutMix (with probability <see cref="SwitchProb"/>,
/// λ ~ Beta(α_cutmix, α_cutmix)) or Mixup (λ ~ Beta(α_mixup, α_mixup)), each image paired with the one at the
/// mirrored position of the batch (<c>flip(0)</c>):
/// <code>
///   mixup:  x ← λ·x + (1 − λ)·x.flip(0)
///   cutmix: x[box] ← x.flip(0)[box], box of side √(1 − λ) of the image at a uniform centre, clipped;
///           then λ ← 1 − area(box) / (H·W)
///   targets = λ·smooth(y) + (1 − λ)·smooth(y.flip(0)),   smooth(y) = (1 − ε)·onehot(y) + ε/classes
/// </code>
/// The random numbers are drawn on the host; the mixing runs batched on the images' device.
/// </summary>
public sealed class MixupCutmix
{
    public MixupCutmix(double mixupAlpha = 0.8, double cutmixAlpha = 1.0, double switchProb = 0.5, double prob = 1.0, double smoothing = 0.1)
    {
        if (!(mixupAlpha >= 0) || !(cutmixAlpha >= 0)) throw new ArgumentOutOfRangeException(nameof(mixupAlpha), "mixup and cutmix alphas must be >= 0");
        if (!(switchProb is >= 0 and <= 1) || !(prob is >= 0 and <= 1)) throw new ArgumentOutOfRangeException(nameof(prob), "probabilities must be in [0, 1]");
        if (!(smoothing is >= 0 and < 1)) throw new ArgumentOutOfRangeException(nameof(smoothing), smoothing, "label smoothing must be in [0, 1)");
        MixupAlpha = mixupAlpha;
        CutmixAlpha = cutmixAlpha;
        SwitchProb = switchProb;
        Prob = prob;
        Smoothing = smoothing;
    }

    public double MixupAlpha { get; }
    public double CutmixAlpha { get; }
    public double SwitchProb { get; }
    public double Prob { get; }
    public double Smoothing { get; }

    public bool Enabled => Prob > 0 && (MixupAlpha > 0 || CutmixAlpha > 0);

    /// <summary>Draws the mixing of one batch of <paramref name="height"/> x <paramref name="width"/> images.</summary>
    public MixDraw Draw(Random rng, int height, int width)
    {
        ArgumentNullException.ThrowIfNull(rng);
        if (!Enabled || rng.NextDouble() >= Prob) return MixDraw.None;
        bool cutmix = MixupAlpha > 0 && CutmixAlpha > 0 ? rng.NextDouble() < SwitchProb : CutmixAlpha > 0;
        double lambda = Beta(rng, cutmix ? CutmixAlpha : MixupAlpha);
        if (!cutmix) return new MixDraw(false, lambda);

        double side = Math.Sqrt(1 - lambda);
        int cutH = (int)(height * side), cutW = (int)(width * side);
        int cy = rng.Next(height), cx = rng.Next(width);
        int top = Math.Clamp(cy - cutH / 2, 0, height), bottom = Math.Clamp(cy + cutH / 2, 0, height);
        int left = Math.Clamp(cx - cutW / 2, 0, width), right = Math.Clamp(cx + cutW / 2, 0, width);
        double area = (double)(bottom - top) * (right - left);
        return new MixDraw(true, 1 - area / ((double)height * width), top, bottom, left, right);
    }

    /// <summary>Mixed images and soft targets <c>[N, classes]</c> for normalised images <c>[N, C, H, W]</c> and labels <c>[N]</c>.</summary>
    public (Tensor Images, Tensor Targets) Apply(Tensor images, Tensor labels, int classes, Random rng)
    {
        var draw = Draw(rng, (int)images.shape[2], (int)images.shape[3]);
        return (MixImages(images, draw), MixTargets(labels, classes, Smoothing, draw.Lambda));
    }

    /// <summary>The images of a draw: mixup blends with the mirrored batch, cutmix pastes its box.</summary>
    /// <param name="mirrored">Null: <paramref name="images"/> is the whole batch, each image's partner is in it. In a
    /// data-parallel run, <paramref name="images"/> are rows [o, o + c) of a global batch of n and <paramref name="mirrored"/>
    /// the rows [n − o − c, n − o) that mirror them (augmented alike), in batch order: row i's partner is mirrored row c − 1 − i,
    /// as in the one-process batch.</param>
    public static Tensor MixImages(Tensor images, MixDraw draw, Tensor? mirrored = null)
    {
        ArgumentNullException.ThrowIfNull(draw);
        if (mirrored is not null && !mirrored.shape.SequenceEqual(images.shape))
            throw new ArgumentException($"the mirrored rows [{string.Join(", ", mirrored.shape)}] differ in shape from the images [{string.Join(", ", images.shape)}]");
        if (draw == MixDraw.None || (!draw.CutMix && draw.Lambda == 1)) return images.alias();
        using var scope = NewDisposeScope();
        var partner = (mirrored ?? images).flip(0);
        if (!draw.CutMix) return (images * draw.Lambda + partner * (1 - draw.Lambda)).MoveToOuterDisposeScope();
        var mask = zeros([1, 1, images.shape[2], images.shape[3]], images.dtype, images.device);
        if (draw.Bottom > draw.Top && draw.Right > draw.Left)
            mask[.., .., draw.Top..draw.Bottom, draw.Left..draw.Right] = 1.0f;
        return (images * (1 - mask) + partner * mask).MoveToOuterDisposeScope();
    }

    /// <summary><c>λ·smooth(y) + (1 − λ)·smooth(y.flip(0))</c>, <c>[N, classes]</c>.</summary>
    /// <param name="mirroredLabels">Null: <paramref name="labels"/> are the whole batch. In a data-parallel run, the labels of
    /// the rows that mirror this rank's slice (see <see cref="MixImages"/>).</param>
    public static Tensor MixTargets(Tensor labels, int classes, double smoothing, double lambda, Tensor? mirroredLabels = null)
    {
        using var scope = NewDisposeScope();
        var own = ClassificationLoss.SmoothedOneHot(labels, classes, smoothing);
        if (lambda == 1) return own.MoveToOuterDisposeScope();
        var partner = mirroredLabels is null ? own : ClassificationLoss.SmoothedOneHot(mirroredLabels, classes, smoothing);
        return (own * lambda + partner.flip(0) * (1 - lambda)).MoveToOuterDisposeScope();
    }

    /// <summary>Beta(a, a) from two Gamma(a) draws.</summary>
    internal static double Beta(Random rng, double a)
    {
        double x = Gamma(rng, a), y = Gamma(rng, a);
        return x + y == 0 ? 0.5 : x / (x + y);
    }

    /// <summary>Gamma(shape, 1): Marsaglia–Tsang, with the U^(1/shape) boost for shape &lt; 1.</summary>
    private static double Gamma(Random rng, double shape)
    {
        if (shape < 1) return Gamma(rng, shape + 1) * Math.Pow(1 - rng.NextDouble(), 1 / shape);
        double d = shape - 1.0 / 3, c = 1 / Math.Sqrt(9 * d);
        while (true)
        {
            double x, v;
            do
            {
                x = Normal(rng);
                v = 1 + c * x;
            } while (v <= 0);
            v = v * v * v;
            double u = 1 - rng.NextDouble();
            if (Math.Log(u) < 0.5 * x * x + d - d * v + d * Math.Log(v)) return d * v;
        }
    }

    private static double Normal(Random rng) =>
        Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble());
}
