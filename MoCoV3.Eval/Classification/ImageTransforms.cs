using MoCoV3.Augment;
using MoCoV3.Models;
using static TorchSharp.torch;

namespace MoCoV3.Eval.Classification;

/// <summary>
/// Batched, on-device image transforms of supervised training and evaluation, on uint8 batches <c>[N, C, H, W]</c>,
/// returning normalised float32 at the model's input size:
/// <list type="bullet">
/// <item><see cref="Train"/>: RandomResizedCrop(scale = (crop_min, 1), ratio = (3/4, 4/3)) + horizontal flip
/// (the toolkit's <see cref="MoCoAugmentation"/> with colour, blur and solarize switched off);</item>
/// <item><see cref="Eval"/>: resize so that the centre crop of <c>crop_ratio</c> of the side is the input size
/// (ImageNet's Resize(256) + CenterCrop(224) is ratio 224/256 = 0.875), or plain resizing at ratio 1.</item>
/// </list>
/// </summary>
public sealed class ImageTransforms
{
    /// <summary>ImageNet's Resize(256) + CenterCrop(224).</summary>
    public const double ImageNetCropRatio = 224.0 / 256.0;

    private static readonly ViewAugmentation CropAndFlip = new(ColorJitterP: 0, GrayscaleP: 0, BlurP: 0, SolarizeP: 0, FlipP: 0.5);

    private readonly MoCoAugmentation augmentation;
    private readonly int size;
    private readonly double cropRatio;
    private readonly double[] mean;
    private readonly double[] std;

    public ImageTransforms(ModelPreset preset, double cropMin, double cropRatio)
    {
        ArgumentNullException.ThrowIfNull(preset);
        if (!(cropMin is > 0 and <= 1)) throw new ArgumentOutOfRangeException(nameof(cropMin), cropMin, "crop_min must be in (0, 1]");
        if (!(cropRatio is > 0 and <= 1)) throw new ArgumentOutOfRangeException(nameof(cropRatio), cropRatio, "the eval crop ratio must be in (0, 1]");
        augmentation = new MoCoAugmentation(preset.Input.ImageSize, cropMin, 0, 0, preset.Input.Mean, preset.Input.Std);
        size = preset.Input.ImageSize;
        this.cropRatio = cropRatio;
        mean = preset.Input.Mean;
        std = preset.Input.Std;
    }

    /// <summary>Random resized crop and flip, parameters drawn from <paramref name="rng"/> (one seed per step keeps runs reproducible).</summary>
    /// <param name="rows">Null: <paramref name="pixels"/> is the whole batch. In a data-parallel run, its rows are [Offset,
    /// Offset + N) of a global batch of GlobalCount: the parameters are drawn for the whole global batch, as one process
    /// draws them, and the slice's applied (<see cref="MoCoAugmentation.Apply"/>), so <paramref name="rng"/> ends in the same
    /// state on every rank.</param>
    public Tensor Train(Tensor pixels, Random rng, (int Offset, int GlobalCount)? rows = null) => augmentation.Apply(pixels, CropAndFlip, rng, rows);

    /// <summary>Deterministic evaluation view.</summary>
    public Tensor Eval(Tensor pixels)
    {
        if (cropRatio >= 1) return augmentation.Plain(pixels);
        using var scope = NewDisposeScope();
        var x = pixels.to_type(ScalarType.Float32) / 255.0;
        long h = x.shape[2], w = x.shape[3];
        // Shorter side to size / ratio (torchvision Resize(int)), then the centre size x size crop.
        double scale = size / cropRatio / Math.Min(h, w);
        long rh = Math.Max(size, (long)Math.Round(h * scale)), rw = Math.Max(size, (long)Math.Round(w * scale));
        x = nn.functional.interpolate(x, [rh, rw], mode: InterpolationMode.Bilinear, align_corners: false);
        long top = (rh - size) / 2, left = (rw - size) / 2;
        x = x.narrow(2, top, size).narrow(3, left, size);
        var m = tensor(mean.Select(v => (float)v).ToArray(), [1, mean.Length, 1, 1], device: x.device);
        var s = tensor(std.Select(v => (float)v).ToArray(), [1, std.Length, 1, 1], device: x.device);
        return ((x - m) / s).MoveToOuterDisposeScope();
    }
}
