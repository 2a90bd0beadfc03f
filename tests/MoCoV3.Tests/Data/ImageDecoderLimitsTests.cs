using MoCoV3.Inference;
using System.Buffers.Binary;
using MoCoV3.Data;
using MoCoV3.Tests.Fuzz;
using SkiaSharp;

namespace MoCoV3.Tests.Data;

/// <summary>Image headers that claim more pixels than the file can hold are refused before a decode buffer is allocated.</summary>
[TestClass]
public sealed class ImageDecoderLimitsTests
{
    [TestMethod]
    public void APngWhoseHeaderClaimsMorePixelsThanItsBytesCanHoldIsRefused()
    {
        using var dir = new TempDir();
        string path = TestFiles.WriteSolid(dir.File("big.png"), 40, 30, SKColors.Red, SKEncodedImageFormat.Png);
        byte[] png = File.ReadAllBytes(path);
        // IHDR data starts at byte 16: width, height (big-endian); 8000x8000 with the chunk's CRC made right again.
        BinaryPrimitives.WriteInt32BigEndian(png.AsSpan(16), 8000);
        BinaryPrimitives.WriteInt32BigEndian(png.AsSpan(20), 8000);
        StructuredMutations.FixPngCrcs(png);
        File.WriteAllBytes(path, png);

        var e = Assert.ThrowsExactly<DataFormatException>(() => ImageDecoder.Decode(path, 16, 3, new byte[3 * 16 * 16]));
        StringAssert.StartsWith(e.Message, $"{path}: expected a PNG whose header size fits its {png.Length} bytes");
        StringAssert.Contains(e.Message, "found 8000x8000 in the header");
        Assert.AreEqual(16L, e.Offset);
    }

    [TestMethod]
    public void AnUntouchedPngStillDecodes()
    {
        using var dir = new TempDir();
        string path = TestFiles.WriteSolid(dir.File("ok.png"), 40, 30, SKColors.Red, SKEncodedImageFormat.Png);
        byte[] png = File.ReadAllBytes(path);
        StructuredMutations.FixPngCrcs(png); // a no-op on a valid file
        File.WriteAllBytes(path, png);
        var pixels = new byte[3 * 16 * 16];

        ImageDecoder.Decode(path, 16, 3, pixels);

        Assert.AreEqual(255, pixels[0]);
        Assert.AreEqual(0, pixels[16 * 16]);
    }
}
