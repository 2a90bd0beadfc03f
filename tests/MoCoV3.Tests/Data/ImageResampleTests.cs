using MoCoV3.Inference;
using SkiaSharp;

namespace MoCoV3.Tests.Data;

/// <summary><see cref="ImageDecoder.Resample"/>: pixels already in memory are resized and cropped exactly as a decoded file.</summary>
[TestClass]
public sealed class ImageResampleTests
{
    [TestMethod]
    [DataRow(PixelLayout.Rgb24, 3)]
    [DataRow(PixelLayout.Bgr24, 3)]
    [DataRow(PixelLayout.Rgba32, 3)]
    [DataRow(PixelLayout.Bgra32, 1)]
    public void PixelsInMemoryGiveWhatTheirPngGives(PixelLayout layout, int channels)
    {
        using var dir = new TempDir();
        string path = TestFiles.WritePhotoLike(dir.File("photo.png"), 37, 23, seed: 5, SKEncodedImageFormat.Png);
        using var bitmap = SKBitmap.Decode(path).Copy(SKColorType.Rgba8888);
        ReadOnlySpan<byte> rgba = bitmap.GetPixelSpan();
        int width = bitmap.Width, height = bitmap.Height, bytes = layout is PixelLayout.Rgba32 or PixelLayout.Bgra32 ? 4 : 3;
        var pixels = new byte[width * height * bytes];
        for (int p = 0; p < width * height; p++)
        {
            byte r = rgba[4 * p], g = rgba[4 * p + 1], b = rgba[4 * p + 2];
            bool bgr = layout is PixelLayout.Bgr24 or PixelLayout.Bgra32;
            pixels[bytes * p] = bgr ? b : r;
            pixels[bytes * p + 1] = g;
            pixels[bytes * p + 2] = bgr ? r : b;
            if (bytes == 4) pixels[bytes * p + 3] = 255;
        }
        const int size = 16;
        var expected = new byte[channels * size * size];
        var actual = new byte[channels * size * size];
        ImageDecoder.Decode(path, size, channels, expected);
        ImageDecoder.Resample(pixels, width, height, layout, "photo", size, channels, actual);
        CollectionAssert.AreEqual(expected, actual);
        Assert.IsTrue(expected.Distinct().Count() > 20, "the test image has detail to compare");
    }

    [TestMethod]
    public void AGrayImageIsItsOwnLuminance()
    {
        var gray = Enumerable.Range(0, 8 * 8).Select(i => (byte)(i * 4)).ToArray();
        var actual = new byte[8 * 8];
        ImageDecoder.Resample(gray, 8, 8, PixelLayout.Gray8, "gray", 8, 1, actual);
        CollectionAssert.AreEqual(gray, actual); // same size: a copy, pixel for pixel
    }

    [TestMethod]
    public void ABufferThatDoesNotMatchItsSizeNamesTheImage()
    {
        var e = Assert.ThrowsExactly<DataFormatException>(() =>
            ImageDecoder.Resample(new byte[10 * 10 * 3 - 1], 10, 10, PixelLayout.Rgb24, "frame 12", 8, 3, new byte[3 * 8 * 8]));
        StringAssert.StartsWith(e.Message, "frame 12");
        StringAssert.Contains(e.Message, "300 bytes");
    }
}
