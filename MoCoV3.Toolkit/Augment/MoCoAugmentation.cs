using TorchSharp;
using static TorchSharp.torch;

namespace MoCoV3.Augment;

/// <summary>
/// The MoCo v3 (BYOL asymmetric) augmentation, done batched on tensors on the training device:
/// RandomResizedCrop(scale = (crop_min, 1), ratio = (3/4, 4/3)) and horizontal flip as one affine resampling,
/// ColorJitter(0.4, 0.4, 0.2, 0.1) with p = 0.8 (brightness, contrast, saturation, hue in that fixed order),
/// grayscale with p = 0.2, Gaussian blur σ ∈ [σmin, σmax] and solarize with the per-view probabilities,
/// then per-channel normalisation. On 1-channel images saturation, hue and grayscale have no effect and are
/// skipped. Random parameters are drawn on the host from a seed per (step, view), so results do not depend
/// on the device or on how many steps ran before in this process. Views already cut on the host (from the original
/// images, see <see cref="RandomResizedCrop"/>) get only the colour part: <see cref="TwoCroppedViews"/>.
/// </summary>
public sealed class MoCoAugmentation
{
    private const double Brightness = 0.4, Contrast = 0.4, Saturation = 0.2, Hue = 0.1;
    private static readonly double LogRatioMin = Math.Log(3.0 / 4.0), LogRatioMax = Math.Log(4.0 / 3.0);

    private readonly int outputSize;
    private readonly double cropMin;
    private readonly double blurSigmaMin;
    private readonly double blurSigmaMax;
    private readonly double[] mean;
    private readonly double[] std;

    public MoCoAugmentation(int outputSize, double cropMin, double blurSigmaMin, double blurSigmaMax, double[] mean, double[] std)
    {
        this.outputSize = outputSize;
        this.cropMin = cropMin;
        this.blurSigmaMin = blurSigmaMin;
        this.blurSigmaMax = blurSigmaMax;
        this.mean = mean;
        this.std = std;
    }

    public static MoCoAugmentation FromPreset(Models.ModelPreset p) =>
        new(p.Input.ImageSize, p.Recipe.CropMin, p.Recipe.BlurSigmaMin, p.Recipe.BlurSigmaMax, p.Input.Mean, p.Input.Std);

    /// <summary>
    /// Two augmented, normalised views of a uint8 batch <c>[N, C, H, W]</c> (already on the target device). With
    /// <paramref name="rows"/>, <paramref name="pixels"/> are rows [Offset, Offset + N) of a global batch of GlobalCount
    /// (one rank's slice): the random parameters are drawn for the whole global batch, as one process draws them, and
    /// those of the slice applied, so every image gets the views it gets in a one-process run.
    /// </summary>
    public (Tensor View1, Tensor View2) TwoViews(Tensor pixels, long seed, long step, (int Offset, int GlobalCount)? rows = null) =>
        (Apply(pixels, ViewAugmentation.ByolView1, new Random(SeedSequence.Derive(seed, step, 1)), rows),
         Apply(pixels, ViewAugmentation.ByolView2, new Random(SeedSequence.Derive(seed, step, 2)), rows));

    /// <summary>
    /// Two normalised views from views already cropped, resized and flipped on the host (uint8 <c>[N, C, S, S]</c>, on the
    /// target device): colour jitter, grayscale, blur and solarize of each view, as <see cref="TwoViews"/> applies them
    /// (<paramref name="rows"/>: a slice of a global batch, as there).
    /// </summary>
    public (Tensor View1, Tensor View2) TwoCroppedViews(Tensor view1, Tensor view2, long seed, long step, (int Offset, int GlobalCount)? rows = null) =>
        (ColourAndNormalize(CroppedToFloat(view1), ViewAugmentation.ByolView1, new Random(SeedSequence.Derive(seed, step, 1)), rows),
         ColourAndNormalize(CroppedToFloat(view2), ViewAugmentation.ByolView2, new Random(SeedSequence.Derive(seed, step, 2)), rows));

    /// <summary>No augmentation: the stored image, resized to the model's input size if needed, normalised.</summary>
    public Tensor Plain(Tensor pixels)
    {
        var x = ToModelChannels(pixels.to_type(ScalarType.Float32) / 255.0);
        if (x.shape[2] != outputSize || x.shape[3] != outputSize)
            x = nn.functional.interpolate(x, [outputSize, outputSize], mode: InterpolationMode.Bilinear, align_corners: false);
        return Normalize(x);
    }

    /// <summary>One view: crop and flip, then the colour part, all drawn from <paramref name="rng"/> in that order.</summary>
    /// <param name="rows">Null: <paramref name="pixels"/> is the whole batch. Else its rows are [Offset, Offset + N) of a
    /// batch of GlobalCount: parameters are drawn for GlobalCount rows and the slice's applied (see <see cref="TwoViews"/>).</param>
    public Tensor Apply(Tensor pixels, ViewAugmentation view, Random rng, (int Offset, int GlobalCount)? rows = null)
    {
        var x = ResizedCropAndFlip(ToFloat(pixels), rng, view.FlipP, pixels.device, rows);
        return ColourAndNormalize(x, view, rng, rows);
    }

    /// <summary>The rows of a slice as (offset, global count), the whole batch when <paramref name="rows"/> is null.</summary>
    private static (int Offset, int Count) Rows(Tensor x, (int Offset, int GlobalCount)? rows)
    {
        int local = (int)x.shape[0];
        var (offset, n) = rows ?? (0, local);
        if (offset < 0 || offset + local > n)
            throw new ArgumentException($"rows [{offset}, {offset + local}) do not lie in a global batch of {n}");
        return (offset, n);
    }

    private Tensor ToFloat(Tensor pixels) => ToModelChannels(pixels.to_type(ScalarType.Float32) / 255.0);

    private Tensor CroppedToFloat(Tensor view)
    {
        if (view.dtype != ScalarType.Byte || view.dim() != 4 || view.shape[2] != outputSize || view.shape[3] != outputSize)
            throw new ArgumentException($"expected cropped views as uint8 [N, C, {outputSize}, {outputSize}], found {view.dtype} "
                + $"[{string.Join(", ", view.shape)}]", nameof(view));
        return ToFloat(view);
    }

    /// <summary>Colour jitter, grayscale, blur, solarize (per-view probabilities) and normalisation of float images in [0, 1].</summary>
    private Tensor ColourAndNormalize(Tensor x, ViewAugmentation view, Random rng, (int Offset, int GlobalCount)? rows = null)
    {
        // The intermediates (a dozen full-size float tensors) are freed when the view is done, not at the end of the step:
        // half the peak memory for two views, and the second view reuses the first one's memory.
        using var scope = NewDisposeScope();
        int local = (int)x.shape[0];
        var (offset, n) = Rows(x, rows);
        var device = x.device;
        int channels = (int)x.shape[1];
        // Parameters are drawn for all n rows (the same draws as one process makes); the slice's rows are applied.
        Tensor Slice(Tensor perRow) => local == n ? perRow : perRow.narrow(0, offset, local);
        Tensor Column(int n, Func<int, double> value, Device device) => Slice(MoCoAugmentation.Column(n, value, device));
        Tensor Mask(bool[] values, Device device) => Slice(MoCoAugmentation.Mask(values, device));

        // Colour jitter, applied to a random subset: factors of 1 (and hue 0) leave the other images unchanged.
        var jitter = Draw(n, rng, view.ColorJitterP);
        x = x * Column(n, i => jitter[i] ? Uniform(rng, 1 - Brightness, 1 + Brightness) : 1.0, device);
        x = x.clamp(0.0, 1.0);
        var c = Column(n, i => jitter[i] ? Uniform(rng, 1 - Contrast, 1 + Contrast) : 1.0, device);
        x = (c * x + (1 - c) * Luminance(x).mean([1, 2, 3], keepdim: true)).clamp(0.0, 1.0);
        if (channels == 3)
        {
            var s = Column(n, i => jitter[i] ? Uniform(rng, 1 - Saturation, 1 + Saturation) : 1.0, device);
            x = (s * x + (1 - s) * Luminance(x)).clamp(0.0, 1.0);
            var hueShift = Column(n, i => jitter[i] ? Uniform(rng, -Hue, Hue) : 0.0, device);
            if (jitter.Any(j => j)) x = ShiftHue(x, hueShift);

            var gray = Draw(n, rng, view.GrayscaleP);
            x = where(Mask(gray, device), Luminance(x).expand_as(x), x);
        }

        var blur = Draw(n, rng, view.BlurP);
        if (blur.Any(b => b) && blurSigmaMax > 0)
        {
            var sigma = Enumerable.Range(0, n).Select(i => blur[i] ? Uniform(rng, blurSigmaMin, blurSigmaMax) : 0.0).ToArray();
            x = GaussianBlur(x, sigma[offset..(offset + local)]);
        }

        var solarize = Draw(n, rng, view.SolarizeP);
        if (solarize.Any(s => s))
            x = where(Mask(solarize, device).logical_and(x >= 0.5), 1.0 - x, x);

        return Normalize(x).MoveToOuterDisposeScope();
    }

    /// <summary>Gray images for an RGB model are replicated to three channels (as PIL's <c>convert("RGB")</c>).</summary>
    private Tensor ToModelChannels(Tensor x) =>
        x.shape[1] == 1 && mean.Length == 3 ? x.expand(-1, 3, -1, -1) : x;

    /// <summary>
    /// RandomResizedCrop (area fraction in [crop_min, 1], aspect ratio log-uniform in [3/4, 4/3], up to 10 tries,
    /// else the whole image) and horizontal flip, resampled bilinearly to the output size in one grid_sample.
    /// </summary>
    private Tensor ResizedCropAndFlip(Tensor x, Random rng, double flipP, Device device, (int Offset, int GlobalCount)? rows)
    {
        int local = (int)x.shape[0];
        var (offset, n) = Rows(x, rows); // draws for all n rows, the slice's applied
        double height = x.shape[2], width = x.shape[3];
        var theta = new float[n * 6];
        for (int i = 0; i < n; i++)
        {
            double w = 1, h = 1; // crop size as fractions of the image sides
            for (int attempt = 0; attempt < 10; attempt++)
            {
                double area = Uniform(rng, cropMin, 1.0);
                double ratio = Math.Exp(Uniform(rng, LogRatioMin, LogRatioMax));
                // ratio is width/height in pixels; convert to side fractions.
                double cw = Math.Sqrt(area * ratio * height / width), ch = Math.Sqrt(area / ratio * width / height);
                if (cw <= 1 && ch <= 1) { w = cw; h = ch; break; }
            }
            double cx = Uniform(rng, -(1 - w), 1 - w), cy = Uniform(rng, -(1 - h), 1 - h);
            double flip = rng.NextDouble() < flipP ? -1 : 1;
            theta[i * 6 + 0] = (float)(w * flip);
            theta[i * 6 + 2] = (float)cx;
            theta[i * 6 + 4] = (float)h;
            theta[i * 6 + 5] = (float)cy;
        }
        var t = tensor(theta, [n, 2, 3], device: device);
        if (local != n) t = t.narrow(0, offset, local);
        var grid = nn.functional.affine_grid(t, [local, x.shape[1], outputSize, outputSize], align_corners: false);
        return nn.functional.grid_sample(x, grid, GridSampleMode.Bilinear, GridSamplePaddingMode.Border, align_corners: false);
    }

    /// <summary>Per-image separable Gaussian blur (σ = 0 leaves an image unchanged), reflect padding.</summary>
    private Tensor GaussianBlur(Tensor x, double[] sigma)
    {
        long n = x.shape[0], channels = x.shape[1], h = x.shape[2], w = x.shape[3];
        int radius = (int)Math.Min(Math.Ceiling(3 * blurSigmaMax), Math.Min(h, w) / 2 - 1);
        if (radius < 1) return x;
        int k = 2 * radius + 1;
        var weights = new float[n * k];
        for (int i = 0; i < n; i++)
        {
            if (sigma[i] <= 0) { weights[i * k + radius] = 1; continue; }
            double sum = 0;
            for (int j = -radius; j <= radius; j++) sum += Math.Exp(-j * j / (2 * sigma[i] * sigma[i]));
            for (int j = -radius; j <= radius; j++) weights[i * k + j + radius] = (float)(Math.Exp(-j * j / (2 * sigma[i] * sigma[i])) / sum);
        }
        var kernel = tensor(weights, [n, 1, k], device: x.device).repeat_interleave(channels, dim: 0); // [N*C, 1, k]
        var y = x.reshape(1, n * channels, h, w);
        y = nn.functional.pad(y, [radius, radius, radius, radius], PaddingModes.Reflect);
        y = nn.functional.conv2d(y, kernel.unsqueeze(2), groups: n * channels);   // along W: [N*C,1,1,k]
        y = nn.functional.conv2d(y, kernel.unsqueeze(3), groups: n * channels);   // along H: [N*C,1,k,1]
        return y.reshape(n, channels, h, w);
    }

    /// <summary>Rotates hue by <paramref name="shift"/> (fraction of a turn) in HSV space, per image.</summary>
    internal static Tensor ShiftHue(Tensor rgb, Tensor shift)
    {
        var r = rgb[.., 0]; var g = rgb[.., 1]; var b = rgb[.., 2];
        var max = rgb.amax([1]); var min = rgb.amin([1]);
        var delta = max - min;
        var safeDelta = where(delta > 0, delta, ones_like(delta));
        var s = where(max > 0, delta / where(max > 0, max, ones_like(max)), zeros_like(max));
        var rc = (max - r) / safeDelta; var gc = (max - g) / safeDelta; var bc = (max - b) / safeDelta;
        var hue = where(r == max, bc - gc, where(g == max, 2.0 + rc - bc, 4.0 + gc - rc)) / 6.0;
        hue = where(delta > 0, hue, zeros_like(hue));
        hue = remainder(hue + shift.squeeze(1), 1.0);
        // HSV -> RGB: channel n (5, 3, 1 for R, G, B) = v - v·s·clamp(min(k, 4 - k), 0, 1), k = (n + 6h) mod 6.
        Tensor Channel(double offset)
        {
            var k = remainder(hue * 6.0 + offset, 6.0);
            return max - max * s * minimum(k, 4.0 - k).clamp(0.0, 1.0);
        }
        return stack([Channel(5), Channel(3), Channel(1)], dim: 1);
    }

    /// <summary>ITU-R 601 luma (what PIL's convert('L') uses): <c>[N, 1, H, W]</c>.</summary>
    private static Tensor Luminance(Tensor x) =>
        x.shape[1] == 1 ? x : (0.299 * x[.., 0..1] + 0.587 * x[.., 1..2] + 0.114 * x[.., 2..3]);

    private Tensor Normalize(Tensor x)
    {
        var m = tensor(mean.Select(v => (float)v).ToArray(), [1, mean.Length, 1, 1], device: x.device);
        var s = tensor(std.Select(v => (float)v).ToArray(), [1, std.Length, 1, 1], device: x.device);
        return (x - m) / s;
    }

    private static double Uniform(Random rng, double lo, double hi) => lo + (hi - lo) * rng.NextDouble();

    private static bool[] Draw(int n, Random rng, double p) => Enumerable.Range(0, n).Select(_ => rng.NextDouble() < p).ToArray();

    private static Tensor Column(int n, Func<int, double> value, Device device) =>
        tensor(Enumerable.Range(0, n).Select(i => (float)value(i)).ToArray(), [n, 1, 1, 1], device: device);

    private static Tensor Mask(bool[] values, Device device) => tensor(values, [values.Length, 1, 1, 1], device: device);
}
