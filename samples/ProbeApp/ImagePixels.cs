using SkiaSharp;

namespace ProbeApp;

/// <summary>
/// An image file as the probe's input: resized so that the shorter side is the model's size, the centre cropped, then
/// CHW floats in [0, 1], grey (0.299 R + 0.587 G + 0.114 B) for 1 channel or RGB for 3 — the way the toolkit reads images
/// for training.
/// </summary>
internal static class ImagePixels
{
    public static float[] Read(string path, int size, int channels)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: image not found", path);
        using var decoded = SKBitmap.Decode(path) ?? throw new InvalidDataException($"{path}: not an image SkiaSharp can decode");
        using var source = decoded.Copy(SKColorType.Rgba8888)
            ?? throw new InvalidDataException($"{path}: cannot convert the image to RGBA");
        using var target = new SKBitmap(new SKImageInfo(size, size, SKColorType.Rgba8888, SKAlphaType.Opaque));
        using (var canvas = new SKCanvas(target))
        using (var image = SKImage.FromBitmap(source))
        {
            canvas.Clear(SKColors.Black);
            float scale = size / (float)Math.Min(source.Width, source.Height);
            canvas.Translate(MathF.Round((size - source.Width * scale) / 2), MathF.Round((size - source.Height * scale) / 2));
            canvas.Scale(scale);
            var sampling = Math.Min(source.Width, source.Height) == size
                ? new SKSamplingOptions(SKFilterMode.Nearest, SKMipmapMode.None)
                : new SKSamplingOptions(SKFilterMode.Linear, SKMipmapMode.Nearest);
            canvas.DrawImage(image, 0, 0, sampling, null);
        }

        ReadOnlySpan<byte> rgba = target.GetPixelSpan();
        int plane = size * size;
        var pixels = new float[channels * plane];
        for (int y = 0; y < size; y++)
        {
            for (int x = 0; x < size; x++)
            {
                int at = y * target.RowBytes + 4 * x, o = y * size + x;
                byte r = rgba[at], g = rgba[at + 1], b = rgba[at + 2];
                if (channels == 1)
                {
                    pixels[o] = (299 * r + 587 * g + 114 * b + 500) / 1000 / 255f;
                }
                else
                {
                    pixels[o] = r / 255f;
                    pixels[plane + o] = g / 255f;
                    pixels[2 * plane + o] = b / 255f;
                }
            }
        }
        return pixels;
    }
}
