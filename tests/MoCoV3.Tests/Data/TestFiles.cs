using System.Buffers.Binary;
using System.IO.Compression;
using SkiaSharp;

namespace MoCoV3.Tests.Data;

/// <summary>A fresh temporary folder, deleted on dispose.</summary>
internal sealed class TempDir : IDisposable
{
    public TempDir()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "mocov3-data-tests-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public string File(params string[] parts) => System.IO.Path.Combine([Path, .. parts]);

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}

/// <summary>Writes small real data files for the tests.</summary>
internal static class TestFiles
{
    /// <summary>An IDX file of unsigned bytes: magic, big-endian dims, payload; gzip-compressed if asked.</summary>
    public static byte[] IdxBytes(int[] dims, byte[] payload, int? magic = null)
    {
        var bytes = new byte[4 + 4 * dims.Length + payload.Length];
        BinaryPrimitives.WriteInt32BigEndian(bytes, magic ?? (0x0800 | dims.Length));
        for (int i = 0; i < dims.Length; i++)
            BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(4 + 4 * i), dims[i]);
        payload.CopyTo(bytes, 4 + 4 * dims.Length);
        return bytes;
    }

    public static byte[] Gzip(byte[] data)
    {
        using var output = new MemoryStream();
        using (var gzip = new GZipStream(output, CompressionLevel.Optimal))
            gzip.Write(data);
        return output.ToArray();
    }

    public static string WriteIdx(string path, int[] dims, byte[] payload, bool gzip = false)
    {
        byte[] bytes = IdxBytes(dims, payload);
        File.WriteAllBytes(path, gzip ? Gzip(bytes) : bytes);
        return path;
    }

    /// <summary>A Fashion-MNIST-like folder: <paramref name="count"/> 28x28 images (pixel value = index) and labels.</summary>
    public static void WriteFashionLike(string folder, bool train, int count, Func<int, byte> label, bool gzip,
        int? labelCount = null)
    {
        string prefix = train ? "train" : "t10k";
        string ext = gzip ? ".gz" : "";
        var pixels = new byte[count * 28 * 28];
        for (int i = 0; i < count; i++)
            pixels.AsSpan(i * 784, 784).Fill((byte)i);
        WriteIdx(Path.Combine(folder, $"{prefix}-images-idx3-ubyte{ext}"), [count, 28, 28], pixels, gzip);
        int n = labelCount ?? count;
        WriteIdx(Path.Combine(folder, $"{prefix}-labels-idx1-ubyte{ext}"), [n],
            Enumerable.Range(0, n).Select(label).ToArray(), gzip);
    }

    /// <summary>An image of one colour, encoded as PNG, JPEG or WebP.</summary>
    public static string WriteSolid(string path, int width, int height, SKColor color, SKEncodedImageFormat format)
    {
        using var bitmap = new SKBitmap(new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Premul));
        bitmap.Erase(color);
        return Encode(bitmap, path, format);
    }

    /// <summary>An image made of vertical stripes of equal width, one per colour, left to right.</summary>
    public static string WriteStripes(string path, int stripeWidth, int height, SKColor[] colors, SKEncodedImageFormat format)
    {
        using var bitmap = new SKBitmap(new SKImageInfo(stripeWidth * colors.Length, height, SKColorType.Rgba8888,
            SKAlphaType.Premul));
        using (var canvas = new SKCanvas(bitmap))
        {
            for (int i = 0; i < colors.Length; i++)
            {
                using var paint = new SKPaint { Color = colors[i] };
                canvas.DrawRect(new SKRect(i * stripeWidth, 0, (i + 1) * stripeWidth, height), paint);
            }
        }
        return Encode(bitmap, path, format);
    }

    /// <summary>
    /// A photo-like RGB image: a smooth two-colour gradient, a few filled circles and rectangles, and per-pixel noise, so
    /// that resizing, cropping and every channel matter (a flat colour would hide mistakes).
    /// </summary>
    public static string WritePhotoLike(string path, int width, int height, int seed, SKEncodedImageFormat format)
    {
        var random = new Random(seed);
        using var bitmap = new SKBitmap(new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Premul));
        using (var canvas = new SKCanvas(bitmap))
        {
            SKColor RandomColor() => new((byte)random.Next(256), (byte)random.Next(256), (byte)random.Next(256));
            using (var gradient = new SKPaint
            {
                Shader = SKShader.CreateLinearGradient(new SKPoint(0, 0), new SKPoint(width, height), [RandomColor(), RandomColor()], SKShaderTileMode.Clamp),
            })
                canvas.DrawRect(new SKRect(0, 0, width, height), gradient);
            for (int i = 0; i < 6; i++)
            {
                using var paint = new SKPaint { Color = RandomColor().WithAlpha((byte)random.Next(120, 256)), IsAntialias = true };
                float x = random.Next(width), y = random.Next(height), r = random.Next(2, Math.Max(3, Math.Min(width, height) / 3));
                if (i % 2 == 0) canvas.DrawCircle(x, y, r, paint);
                else canvas.DrawRect(new SKRect(x - r, y - r / 2, x + r, y + r / 2), paint);
            }
        }
        var pixels = bitmap.GetPixelSpan();
        var noisy = pixels.ToArray();
        for (int i = 0; i < noisy.Length; i++)
            if (i % 4 != 3) noisy[i] = (byte)Math.Clamp(noisy[i] + random.Next(-12, 13), 0, 255);
        noisy.CopyTo(bitmap.GetPixelSpan());
        return Encode(bitmap, path, format);
    }

    private static string Encode(SKBitmap bitmap, string path, SKEncodedImageFormat format)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        using SKData data = bitmap.Encode(format, 95) ?? throw new InvalidOperationException($"cannot encode {format}");
        File.WriteAllBytes(path, data.ToArray());
        return path;
    }
}
