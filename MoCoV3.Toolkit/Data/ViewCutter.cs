using System.Runtime.ExceptionServices;
using MoCoV3.Augment;
using MoCoV3.Inference;
using SkiaSharp;

namespace MoCoV3.Data;

/// <summary>
/// Decodes an image file once and cuts its two views from the original pixels: each view's RandomResizedCrop box, resized
/// to the output size with PIL's antialiased bilinear filter (<see cref="AntialiasedResize"/>) and flipped when drawn so.
/// When both boxes stay at least <see cref="DctMargin"/> times the output size on a JPEG decoded at k/8 of its size, the
/// decoder shrinks in the DCT domain (libjpeg-turbo's scaled IDCT, through <see cref="SKCodec.GetScaledDimensions"/>), so that decoding costs what
/// the crops need; the boxes are then mapped onto the smaller decode.
/// </summary>
public static class ViewCutter
{
    /// <summary>
    /// How many times the output size each box must still measure on the smaller decode. The DCT-domain shrink is
    /// sharper than PIL's triangle filter; with the antialiased resize still shrinking 3x after it, the views stay within
    /// torchvision parity (mean 1 gray level, max 8: CropParityTests); at 1x they differ by up to 20 gray levels on edges.
    /// </summary>
    public const int DctMargin = 3;

    /// <summary>Cuts the views of the files <c>paths[indices[i]]</c> in parallel; see <see cref="Cut"/>.</summary>
    public static unsafe void CutBatch(IReadOnlyList<string> paths, ReadOnlySpan<int> indices, ViewCropping cropping, long step,
        int channels, Span<byte> view1, Span<byte> view2)
    {
        int size = cropping.Crop.Size;
        int imageBytes = channels * size * size;
        if (view1.Length != (long)imageBytes * indices.Length || view2.Length != view1.Length)
            throw new ArgumentException($"expected two views of {indices.Length} x {imageBytes} bytes, found {view1.Length} and {view2.Length}");
        int[] batch = indices.ToArray();
        var errors = new Exception?[batch.Length];
        fixed (byte* first = view1, second = view2)
        {
            nint a = (nint)first, b = (nint)second;
            Parallel.For(0, batch.Length, i =>
            {
                try
                {
                    var crop1 = new Span<byte>((byte*)a + (long)i * imageBytes, imageBytes);
                    var crop2 = new Span<byte>((byte*)b + (long)i * imageBytes, imageBytes);
                    Cut(paths[batch[i]], cropping, step, batch[i], channels, crop1, crop2);
                }
                catch (Exception e)
                {
                    errors[i] = e;
                }
            });
        }
        foreach (Exception? error in errors)
        {
            if (error is not null)
                ExceptionDispatchInfo.Throw(error);
        }
    }

    /// <summary>
    /// Cuts the two views of the image file <paramref name="path"/>, sample <paramref name="sample"/> at
    /// <paramref name="step"/>, into <paramref name="view1"/> and <paramref name="view2"/> (<c>channels * size * size</c>
    /// bytes each, CHW). Returns the boxes and flips used (in the file's full-size pixels).
    /// </summary>
    /// <exception cref="DataFormatException">The file is empty, not a decodable image, too large or truncated.</exception>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    public static (ViewCrop View1, ViewCrop View2) Cut(string path, ViewCropping cropping, long step, long sample, int channels,
        Span<byte> view1, Span<byte> view2)
    {
        ArgumentNullException.ThrowIfNull(cropping);
        ImageDecoder.ValidateShape(cropping.Crop.Size, channels);
        using SKData data = Read(path);
        return CutDecoded(data, path, channels, view1, view2,
            (width, height) => cropping.Crop.TwoViews(cropping.Seed, step, sample, width, height), cropping.Crop.Size, cropping.DctScaling);
    }

    /// <summary>Cuts two given views (boxes in the file's full-size pixels) of the image file <paramref name="path"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">A box is not inside the image.</exception>
    public static void CutBoxes(string path, ViewCrop crop1, ViewCrop crop2, int size, int channels, bool dctScaling,
        Span<byte> view1, Span<byte> view2)
    {
        ImageDecoder.ValidateShape(size, channels);
        using SKData data = Read(path);
        CutDecoded(data, path, channels, view1, view2, (_, _) => (crop1, crop2), size, dctScaling);
    }

    private static SKData Read(string path)
    {
        using FileStream file = File.OpenRead(path);
        if (file.Length == 0)
            throw new DataFormatException(path, 0, "expected a JPEG, PNG or WebP image, found an empty file");
        return SKData.Create(file)
            ?? throw new DataFormatException(path, null, "expected a JPEG, PNG or WebP image, found a file Skia cannot read");
    }

    private static (ViewCrop, ViewCrop) CutDecoded(SKData data, string source, int channels, Span<byte> view1, Span<byte> view2,
        Func<int, int, (ViewCrop, ViewCrop)> draw, int size, bool dctScaling)
    {
        int imageBytes = channels * size * size;
        if (view1.Length != imageBytes || view2.Length != imageBytes)
            throw new ArgumentException($"expected two views of {imageBytes} bytes, found {view1.Length} and {view2.Length}");
        (ViewCrop, ViewCrop) crops = default;
        SKSizeI full = default;
        SKSizeI Choose(SKCodec codec)
        {
            full = codec.Info.Size;
            crops = draw(full.Width, full.Height);
            foreach (ViewCrop crop in new[] { crops.Item1, crops.Item2 })
            {
                if (crop.Top < 0 || crop.Left < 0 || crop.Height < 1 || crop.Width < 1
                    || crop.Top + crop.Height > full.Height || crop.Left + crop.Width > full.Width)
                    throw new ArgumentOutOfRangeException(nameof(draw), crop, $"{source}: the crop box is not inside the {full.Width}x{full.Height} image");
            }
            return dctScaling ? DecodeSize(codec, crops.Item1, crops.Item2, size) : full;
        }

        using SKBitmap decoded = ImageDecoder.DecodeRgba(data, source, Choose, $"for views of {size}x{size}");
        double sx = decoded.Width / (double)full.Width, sy = decoded.Height / (double)full.Height;
        ReadOnlySpan<byte> rgba = decoded.GetPixelSpan();
        CutOne(rgba, decoded, crops.Item1, sx, sy, size, channels, view1);
        CutOne(rgba, decoded, crops.Item2, sx, sy, size, channels, view2);
        return crops;
    }

    private static void CutOne(ReadOnlySpan<byte> rgba, SKBitmap decoded, ViewCrop crop, double sx, double sy, int size, int channels,
        Span<byte> view) =>
        AntialiasedResize.CropResize(rgba, decoded.Width, decoded.Height, decoded.RowBytes,
            crop.Left * sx, crop.Top * sy, crop.Width * sx, crop.Height * sy, size, channels, crop.Flip, view);

    /// <summary>The smallest k/8 decode of the codec on which both boxes still measure at least <see cref="DctMargin"/> x
    /// <paramref name="size"/> on each side; the full size when none does.</summary>
    internal static SKSizeI DecodeSize(SKCodec codec, ViewCrop a, ViewCrop b, int size)
    {
        SKSizeI full = codec.Info.Size;
        int smallestWidth = Math.Min(a.Width, b.Width), smallestHeight = Math.Min(a.Height, b.Height);
        if (Math.Min(smallestWidth, smallestHeight) <= DctMargin * size)
            return full;
        for (int eighths = 1; eighths < 8; eighths++)
        {
            SKSizeI scaled = codec.GetScaledDimensions(eighths / 8f);
            if (scaled.Width >= full.Width && scaled.Height >= full.Height)
                continue;
            if (smallestWidth * (double)scaled.Width / full.Width >= DctMargin * size && smallestHeight * (double)scaled.Height / full.Height >= DctMargin * size)
                return scaled;
        }
        return full;
    }
}
