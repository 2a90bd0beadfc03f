namespace MoCoV3.Augment;

/// <summary>
/// torchvision's <c>RandomResizedCrop(size, scale = (ScaleMin, ScaleMax), ratio = (3/4, 4/3))</c> followed by
/// <c>RandomHorizontalFlip(p = 0.5)</c>, drawn on the host for an image of known size. <see cref="Box"/> follows
/// <c>RandomResizedCrop.get_params</c>: up to 10 tries of an area fraction uniform in [ScaleMin, ScaleMax] and an aspect
/// ratio (width / height) log-uniform in [3/4, 4/3], sides rounded half to even as Python's <c>round</c>, kept when the box
/// fits the image, at a uniform position; when no try fits, the central crop of the image clamped to the ratio range.
/// <see cref="TwoViews"/> draws both views of one sample from a generator seeded by (seed, step, sample) alone, so the
/// views do not depend on the thread, the batch composition or what ran before (resume, data parallelism).
/// </summary>
public sealed record RandomResizedCrop(int Size, double ScaleMin, double ScaleMax = 1.0)
{
    public const double RatioMin = 3.0 / 4.0, RatioMax = 4.0 / 3.0;
    public const int Tries = 10;
    public const double FlipP = 0.5;

    // Separates the crop streams from the per-(step, view) streams of the device augmentation.
    private const long CropStream = 0x43524F50; // "CROP"

    private static readonly double LogRatioMin = Math.Log(RatioMin), LogRatioMax = Math.Log(RatioMax);

    public int Size { get; } = Size >= 1 ? Size : throw new ArgumentOutOfRangeException(nameof(Size), Size, "expected an output size of at least 1");

    public double ScaleMin { get; } = ScaleMin is > 0 and <= 1 ? ScaleMin
        : throw new ArgumentOutOfRangeException(nameof(ScaleMin), ScaleMin, "expected a smallest area fraction in (0, 1]");

    public double ScaleMax { get; } = ScaleMax is > 0 and <= 1 && ScaleMax >= ScaleMin ? ScaleMax
        : throw new ArgumentOutOfRangeException(nameof(ScaleMax), ScaleMax, "expected a largest area fraction in [ScaleMin, 1]");

    /// <summary>The two views (box and flip) of sample <paramref name="sample"/> at <paramref name="step"/> of a run seeded
    /// with <paramref name="seed"/>, for an image of <paramref name="width"/> x <paramref name="height"/> pixels.</summary>
    public (ViewCrop View1, ViewCrop View2) TwoViews(long seed, long step, long sample, int width, int height)
    {
        var rng = new Random(SeedSequence.Derive(seed, step, CropStream, sample));
        return (View(width, height, rng), View(width, height, rng));
    }

    /// <summary>One view: the box, then the flip, drawn from <paramref name="rng"/>.</summary>
    public ViewCrop View(int width, int height, Random rng)
    {
        var (top, left, h, w) = Box(width, height, rng);
        return new ViewCrop(top, left, h, w, rng.NextDouble() < FlipP);
    }

    /// <summary>The crop box (top, left, height, width) as <c>RandomResizedCrop.get_params</c> draws it.</summary>
    public (int Top, int Left, int Height, int Width) Box(int width, int height, Random rng)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(width, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(height, 1);
        ArgumentNullException.ThrowIfNull(rng);
        double area = (double)width * height;
        for (int attempt = 0; attempt < Tries; attempt++)
        {
            double targetArea = area * Uniform(rng, ScaleMin, ScaleMax);
            double aspectRatio = Math.Exp(Uniform(rng, LogRatioMin, LogRatioMax));
            int w = (int)Math.Round(Math.Sqrt(targetArea * aspectRatio), MidpointRounding.ToEven);
            int h = (int)Math.Round(Math.Sqrt(targetArea / aspectRatio), MidpointRounding.ToEven);
            if (w > 0 && w <= width && h > 0 && h <= height)
            {
                int top = rng.Next(0, height - h + 1);
                int left = rng.Next(0, width - w + 1);
                return (top, left, h, w);
            }
        }
        return CentralBox(width, height);
    }

    /// <summary>The fallback when no try fits: the whole image, cut to the nearest allowed aspect ratio, centred.</summary>
    public static (int Top, int Left, int Height, int Width) CentralBox(int width, int height)
    {
        double inRatio = (double)width / height;
        int w = width, h = height;
        if (inRatio < RatioMin)
            h = (int)Math.Round(w / RatioMin, MidpointRounding.ToEven);
        else if (inRatio > RatioMax)
            w = (int)Math.Round(h * RatioMax, MidpointRounding.ToEven);
        return ((height - h) / 2, (width - w) / 2, h, w);
    }

    private static double Uniform(Random rng, double lo, double hi) => lo + (hi - lo) * rng.NextDouble();
}
