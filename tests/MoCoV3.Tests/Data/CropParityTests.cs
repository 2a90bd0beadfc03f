using System.Text.Json;
using MoCoV3.Augment;
using MoCoV3.Data;
using SkiaSharp;

namespace MoCoV3.Tests.Data;

/// <summary>
/// Our host views against torchvision's <c>resized_crop(pil, top, left, h, w, size, antialias=True)</c> (+ <c>hflip</c>) on
/// the same files: the fixtures in Fixtures/Crops were written by tests/fixtures/make_crop_fixtures.py (torchvision 0.14,
/// PIL 9.4 with libjpeg-turbo).
/// </summary>
[TestClass]
public sealed class CropParityTests
{
    private static readonly string Folder = Path.Combine(AppContext.BaseDirectory, "Fixtures", "Crops");

    internal sealed record Case(string Source, string View, int Top, int Left, int Height, int Width, bool Flip, int Size);

    internal static IReadOnlyList<Case> Cases()
    {
        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(Folder, "cases.json")));
        return json.RootElement.GetProperty("cases").EnumerateArray().Select(c => new Case(
            c.GetProperty("source").GetString()!, c.GetProperty("view").GetString()!, c.GetProperty("top").GetInt32(),
            c.GetProperty("left").GetInt32(), c.GetProperty("height").GetInt32(), c.GetProperty("width").GetInt32(),
            c.GetProperty("flip").GetBoolean(), c.GetProperty("size").GetInt32())).ToList();
    }

    /// <summary>Mean and max absolute difference (0-255) of our view of a case from torchvision's.</summary>
    internal static (double Mean, int Max) Difference(Case c, bool dctScaling)
    {
        int plane = c.Size * c.Size;
        var ours = new byte[3 * plane];
        var crop = new ViewCrop(c.Top, c.Left, c.Height, c.Width, c.Flip);
        ViewCutter.CutBoxes(Path.Combine(Folder, c.Source), crop, crop, c.Size, 3, dctScaling, ours, new byte[3 * plane]);

        using var reference = SKBitmap.Decode(Path.Combine(Folder, c.View));
        Assert.AreEqual(c.Size, reference.Width, c.View);
        long sum = 0;
        int max = 0;
        for (int y = 0; y < c.Size; y++)
        {
            for (int x = 0; x < c.Size; x++)
            {
                SKColor p = reference.GetPixel(x, y);
                int o = y * c.Size + x;
                int[] d = [Math.Abs(ours[o] - p.Red), Math.Abs(ours[plane + o] - p.Green), Math.Abs(ours[2 * plane + o] - p.Blue)];
                sum += d.Sum();
                max = Math.Max(max, d.Max());
            }
        }
        return (sum / (3.0 * plane), max);
    }

    [TestMethod]
    public void ViewsOfAJpegEqualTorchvision()
    {
        foreach (Case c in Cases().Where(c => c.Source.EndsWith(".jpg", StringComparison.Ordinal)))
        {
            var (mean, max) = Difference(c, dctScaling: false);
            Console.WriteLine($"{c.View} ({c.Top},{c.Left},{c.Height}x{c.Width}{(c.Flip ? ", flip" : "")} -> {c.Size}): mean {mean:F3}, max {max}");
            // Measured: bit-equal (mean 0, max 0) on every case with Skia 4.155 and PIL 9.4, both libjpeg-turbo.
            Assert.IsTrue(mean <= 1.0 && max <= 8, $"{c.View}: mean {mean:F3} (at most 1.0), max {max} (at most 8)");
        }
    }

    [TestMethod]
    public void ViewsOfAPngEqualTorchvision()
    {
        // No JPEG decoder in between: the difference is the resampling's alone.
        foreach (Case c in Cases().Where(c => c.Source.EndsWith(".png", StringComparison.Ordinal)))
        {
            var (mean, max) = Difference(c, dctScaling: false);
            Console.WriteLine($"{c.View}: mean {mean:F3}, max {max}");
            Assert.IsTrue(mean <= 0.05 && max <= 1, $"{c.View}: mean {mean:F3} (at most 0.05), max {max} (at most 1)");
        }
    }

    [TestMethod]
    public void TheOneToOneBoxShowsTheDecodersAgree()
    {
        // A 64x64 box resized to 64: only the JPEG decoders (Skia's and PIL's libjpeg-turbo) are compared.
        Case c = Cases().Single(c => c.View == "jpg_3.png");
        var (mean, max) = Difference(c, dctScaling: false);
        Console.WriteLine($"decoders: mean {mean:F3}, max {max}");
        Assert.IsTrue(mean <= 0.05 && max <= 1, $"mean {mean:F3}, max {max}");
    }

    [TestMethod]
    public void DctScaledDecodingStaysCloseToTorchvision()
    {
        // Where both boxes stay ViewCutter.DctMargin times the output size, the JPEG is decoded at k/8 of its size: a
        // different (DCT-domain) shrink first, so no longer bit-equal, but within the same bounds. Cases 0, 7 and 8 use it.
        foreach (Case c in Cases().Where(c => c.Source.EndsWith(".jpg", StringComparison.Ordinal)))
        {
            var (mean, max) = Difference(c, dctScaling: true);
            Console.WriteLine($"{c.View} with DCT scaling: mean {mean:F3}, max {max}");
            Assert.IsTrue(mean <= 1.0 && max <= 8, $"{c.View}: mean {mean:F3} (at most 1.0), max {max} (at most 8)");
        }
    }
}
