using MoCoV3.Data;
using SkiaSharp;

namespace MoCoV3.Tests.Data;

[TestClass]
public sealed class ImageFolderDatasetTests
{
    private static readonly SKColor Red = new(255, 0, 0);
    private static readonly SKColor Green = new(0, 255, 0);
    private static readonly SKColor Blue = new(0, 0, 255);

    /// <summary>cat: a red PNG and a red JPEG; dog: a blue PNG and (in a sub-folder) a green WebP; plus files to skip.</summary>
    private static void WriteClasses(string root)
    {
        TestFiles.WriteSolid(Path.Combine(root, "cat", "a.png"), 40, 30, Red, SKEncodedImageFormat.Png);
        TestFiles.WriteSolid(Path.Combine(root, "cat", "b.JPG"), 64, 48, Red, SKEncodedImageFormat.Jpeg);
        TestFiles.WriteSolid(Path.Combine(root, "dog", "c.png"), 30, 40, Blue, SKEncodedImageFormat.Png);
        TestFiles.WriteSolid(Path.Combine(root, "dog", "sub", "d.webp"), 20, 20, Green, SKEncodedImageFormat.Webp);
        File.WriteAllText(Path.Combine(root, "dog", "readme.txt"), "not an image");
        File.WriteAllText(Path.Combine(root, "dog", "._c.png"), "macOS resource fork, not an image");
        Directory.CreateDirectory(Path.Combine(root, ".ipynb_checkpoints"));
    }

    [TestMethod]
    public void ListsClassesAndImagesInOrdinalOrder()
    {
        using var dir = new TempDir();
        WriteClasses(dir.Path);

        var data = new ImageFolderDataset(dir.Path, 16, 3);

        CollectionAssert.AreEqual(new[] { "cat", "dog" }, data.ClassNames.ToArray());
        CollectionAssert.AreEqual(new[] { "a.png", "b.JPG", "c.png", "d.webp" }, data.Paths.Select(Path.GetFileName).ToArray());
        CollectionAssert.AreEqual(new[] { 0, 0, 1, 1 }, data.Labels.ToArray());
        Assert.AreEqual(4, data.Count);
        Assert.AreEqual(3, data.Channels);
        Assert.AreEqual(16, data.Height);
        Assert.AreEqual(16, data.Width);
    }

    [TestMethod]
    public void DecodesRgbChwWithLabels()
    {
        using var dir = new TempDir();
        WriteClasses(dir.Path);
        var data = new ImageFolderDataset(dir.Path, 16, 3);
        const int plane = 16 * 16;
        var pixels = new byte[4 * 3 * plane];
        var labels = new long[4];

        data.ReadBatch([3, 0, 2, 1], pixels, labels);

        CollectionAssert.AreEqual(new long[] { 1, 0, 1, 0 }, labels);
        AssertSolid(pixels, 0, 3, plane, Green, tolerance: 8); // WebP is lossy
        AssertSolid(pixels, 1, 3, plane, Red, tolerance: 0);   // PNG is exact
        AssertSolid(pixels, 2, 3, plane, Blue, tolerance: 0);
        AssertSolid(pixels, 3, 3, plane, Red, tolerance: 8);   // JPEG is lossy
    }

    [TestMethod]
    public void DecodesLuminanceForOneChannel()
    {
        using var dir = new TempDir();
        WriteClasses(dir.Path);
        var data = new ImageFolderDataset(dir.Path, 8, 1);
        var pixels = new byte[3 * 64];

        data.ReadBatch([0, 2, 3], pixels, new long[3]);

        // 0.299 R + 0.587 G + 0.114 B, rounded.
        Assert.IsTrue(pixels.AsSpan(0, 64).ToArray().All(p => p == 76), "red");
        Assert.IsTrue(pixels.AsSpan(64, 64).ToArray().All(p => p == 29), "blue");
        Assert.IsTrue(pixels.AsSpan(128, 64).ToArray().All(p => Math.Abs(p - 150) <= 6), "green");
    }

    [TestMethod]
    [DataRow(20, 10, DisplayName = "shrink 60x20 to 10")]
    [DataRow(4, 8, DisplayName = "enlarge 12x4 to 8")]
    public void ResizesShorterSideAndCropsTheCenter(int stripe, int size)
    {
        using var dir = new TempDir();
        // Three vertical stripes, red | green | blue, each as wide as the image is high: after resizing the height to
        // `size`, the center crop of `size` x `size` is exactly the green stripe.
        TestFiles.WriteStripes(dir.File("c", "stripes.png"), stripe, stripe, [Red, Green, Blue], SKEncodedImageFormat.Png);
        var data = new ImageFolderDataset(dir.Path, size, 3);
        int plane = size * size;
        var pixels = new byte[3 * plane];

        data.ReadBatch([0], pixels, new long[1]);

        for (int y = 0; y < size; y++)
        {
            // The columns next to the stripe edges may blend in a little of the neighbours.
            for (int x = 2; x < size - 2; x++)
            {
                int o = y * size + x;
                Assert.IsTrue(pixels[o] <= 8 && pixels[plane + o] >= 247 && pixels[2 * plane + o] <= 8,
                    $"pixel ({x},{y}) = {pixels[o]},{pixels[plane + o]},{pixels[2 * plane + o]}, expected green");
            }
        }
    }

    [TestMethod]
    public void LargeJpegDecodesScaledDown()
    {
        using var dir = new TempDir();
        // 1000x800 lets the JPEG decoder shrink by 1/8 steps while decoding; the result must still be right.
        TestFiles.WriteSolid(dir.File("c", "big.jpg"), 1000, 800, Blue, SKEncodedImageFormat.Jpeg);
        var data = new ImageFolderDataset(dir.Path, 32, 3);
        var pixels = new byte[3 * 32 * 32];

        data.ReadBatch([0], pixels, new long[1]);

        AssertSolid(pixels, 0, 3, 32 * 32, Blue, tolerance: 8);
    }

    [TestMethod]
    public void ShrinkingDoesNotAlias()
    {
        using var dir = new TempDir();
        // A 1-pixel black/white checkerboard: point or plain bilinear sampling at 300 -> 32 picks near-arbitrary
        // black and white pixels; an averaging (mipmapped) resize gives an even grey.
        string path = dir.File("c", "checker.png");
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        using (var bitmap = new SKBitmap(new SKImageInfo(300, 300, SKColorType.Rgba8888, SKAlphaType.Premul)))
        {
            for (int y = 0; y < 300; y++)
                for (int x = 0; x < 300; x++)
                    bitmap.SetPixel(x, y, (x + y) % 2 == 0 ? SKColors.White : SKColors.Black);
            using SKData png = bitmap.Encode(SKEncodedImageFormat.Png, 100);
            File.WriteAllBytes(path, png.ToArray());
        }
        var data = new ImageFolderDataset(dir.Path, 32, 1);
        var pixels = new byte[32 * 32];

        data.ReadBatch([0], pixels, new long[1]);

        Assert.IsTrue(pixels.All(p => Math.Abs(p - 128) <= 24), $"min {pixels.Min()}, max {pixels.Max()}");
    }

    [TestMethod]
    public void CorruptImageNamesTheFile()
    {
        using var dir = new TempDir();
        WriteClasses(dir.Path);
        string broken = dir.File("dog", "broken.png");
        File.WriteAllBytes(broken, Enumerable.Range(0, 300).Select(i => (byte)(i * 31)).ToArray());
        var data = new ImageFolderDataset(dir.Path, 8, 3);
        int index = data.Paths.ToList().IndexOf(broken);

        var e = Assert.ThrowsExactly<DataFormatException>(() => data.ReadBatch([0, index], new byte[2 * 3 * 64], new long[2]));

        Assert.AreEqual(broken, e.File);
        StringAssert.StartsWith(e.Message, broken);
    }

    [TestMethod]
    [DataRow(SKEncodedImageFormat.Png, "cut.png")]
    [DataRow(SKEncodedImageFormat.Jpeg, "cut.jpg")]
    public void TruncatedImageNamesTheFile(SKEncodedImageFormat format, string name)
    {
        using var dir = new TempDir();
        string path = TestFiles.WriteStripes(dir.File("c", name), 40, 120, [Red, Green, Blue], format);
        byte[] bytes = File.ReadAllBytes(path);
        File.WriteAllBytes(path, bytes[..(bytes.Length / 2)]);
        var data = new ImageFolderDataset(dir.Path, 8, 3);

        var e = Assert.ThrowsExactly<DataFormatException>(() => data.ReadBatch([0], new byte[3 * 64], new long[1]));

        StringAssert.StartsWith(e.Message, path);
    }

    [TestMethod]
    public void EmptyFileNamesTheFile()
    {
        using var dir = new TempDir();
        string path = dir.File("c", "empty.jpg");
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllBytes(path, []);
        var data = new ImageFolderDataset(dir.Path, 8, 3);

        var e = Assert.ThrowsExactly<DataFormatException>(() => data.ReadBatch([0], new byte[3 * 64], new long[1]));

        StringAssert.StartsWith(e.Message, path);
    }

    [TestMethod]
    public void FolderWithoutImagesIsRefused()
    {
        using var dir = new TempDir();
        Directory.CreateDirectory(dir.File("empty-class"));

        var e = Assert.ThrowsExactly<DataFormatException>(() => new ImageFolderDataset(dir.Path, 8, 3));

        StringAssert.StartsWith(e.Message, dir.Path);
    }

    [TestMethod]
    public void MissingFolderIsNamed()
    {
        string root = Path.Combine(Path.GetTempPath(), "no-images-" + Guid.NewGuid().ToString("N"));

        var e = Assert.ThrowsExactly<DirectoryNotFoundException>(() => new ImageFolderDataset(root, 8, 3));

        StringAssert.Contains(e.Message, root);
    }

    [TestMethod]
    public void ChannelsMustBeOneOrThree()
    {
        using var dir = new TempDir();
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => new ImageFolderDataset(dir.Path, 8, 4));
    }

    /// <summary>Every pixel of image <paramref name="image"/> of a CHW batch equals <paramref name="color"/> within the tolerance.</summary>
    internal static void AssertSolid(byte[] pixels, int image, int channels, int plane, SKColor color, int tolerance)
    {
        byte[] expected = [color.Red, color.Green, color.Blue];
        for (int c = 0; c < channels; c++)
        {
            ReadOnlySpan<byte> values = pixels.AsSpan((image * channels + c) * plane, plane);
            foreach (byte v in values)
            {
                if (Math.Abs(v - expected[c]) > tolerance)
                    Assert.Fail($"image {image} channel {c}: expected {expected[c]} ± {tolerance}, found {v}");
            }
        }
    }
}
