using MoCoV3.Inference;
using System.Text;
using MoCoV3.Data;
using MoCoV3.Tests.Data;
using SkiaSharp;

namespace MoCoV3.Tests.Fuzz;

/// <summary>
/// Fuzzes the data readers (IDX plain and gzip, PNG/JPEG/WebP through the image decoder, CSV manifests): every mutated
/// file must load (and then agree with itself) or be refused with a <see cref="DataFormatException"/> naming the file.
/// </summary>
[TestClass]
public sealed class DataFuzzTests
{
    private const int CiCases = 300;

    [TestMethod]
    public void IdxFilesLoadOrAreRefusedWithTheFileAndOffset()
    {
        using var dir = new TempDir();
        FuzzSeed[] seeds =
        [
            new("images-idx3-ubyte", TestFiles.IdxBytes([3, 28, 28], Pixels(3 * 28 * 28))),
            new("labels-idx1-ubyte", TestFiles.IdxBytes([40], Pixels(40))),
        ];
        FuzzHarness.Run("idx", dir.Path, seeds, ReadIdx, CiCases, typeof(DataFormatException)).AssertNoFailures();
    }

    [TestMethod]
    public void GzippedIdxFilesLoadOrAreRefusedWithTheFileAndOffset()
    {
        using var dir = new TempDir();
        FuzzSeed[] seeds =
        [
            new("images-idx3-ubyte.gz", TestFiles.Gzip(TestFiles.IdxBytes([3, 28, 28], Pixels(3 * 28 * 28)))),
            new("labels-idx1-ubyte.gz", TestFiles.Gzip(TestFiles.IdxBytes([40], Pixels(40)))),
            new("content-images-idx3-ubyte.gz", TestFiles.Gzip(TestFiles.IdxBytes([3, 28, 28], Pixels(3 * 28 * 28))), StructuredMutations.GzipContent),
            new("content-labels-idx1-ubyte.gz", TestFiles.Gzip(TestFiles.IdxBytes([40], Pixels(40))), StructuredMutations.GzipContent),
        ];
        FuzzHarness.Run("idx.gz", dir.Path, seeds, ReadIdx, CiCases, typeof(DataFormatException)).AssertNoFailures();
    }

    [TestMethod]
    public void PngFilesDecodeOrAreRefused() => FuzzImages("png", SKEncodedImageFormat.Png, StructuredMutations.PngWithValidCrcs);

    [TestMethod]
    public void JpegFilesDecodeOrAreRefused() => FuzzImages("jpg", SKEncodedImageFormat.Jpeg);

    [TestMethod]
    public void WebpFilesDecodeOrAreRefused() => FuzzImages("webp", SKEncodedImageFormat.Webp);

    [TestMethod]
    public void CsvManifestsLoadOrAreRefusedWithTheFileAndLine()
    {
        using var dir = new TempDir();
        SKColor[] colors = [SKColors.Red, SKColors.Lime, SKColors.Blue];
        var csv = new StringBuilder("path,label\n");
        for (int i = 0; i < 6; i++)
        {
            string name = $"img{i}.png";
            TestFiles.WriteStripes(dir.File("images", name), 4, 8, colors, SKEncodedImageFormat.Png);
            csv.Append($"images/{name},{(i % 2 == 0 ? "cat" : "\"dog, big\"")}\n");
        }
        FuzzSeed[] seeds = [new("manifest.csv", Encoding.UTF8.GetBytes(csv.ToString()))];
        FuzzHarness.Run("csv", dir.Path, seeds, path =>
        {
            var dataset = new CsvManifestDataset(path, 8, 3);
            Assert.IsTrue(dataset.Count is >= 1 and <= 64, $"{dataset.Count} rows from a 7-line seed");
            Assert.AreEqual(dataset.Count, dataset.Labels.Count);
            Assert.IsTrue(dataset.Paths.All(File.Exists), "a listed file does not exist");
            Assert.IsTrue(dataset.Labels.All(l => l >= 0 && l < dataset.ClassNames.Count), "a label outside the classes");
        }, CiCases, typeof(DataFormatException)).AssertNoFailures();
    }

    private static void FuzzImages(string extension, SKEncodedImageFormat format,
        Func<byte[], Random, List<string>, byte[]>? structured = null)
    {
        using var dir = new TempDir();
        SKColor[] colors = [SKColors.Red, SKColors.Lime, SKColors.Blue, SKColors.White];
        FuzzSeed[] seeds =
        [
            new($"stripes.{extension}", File.ReadAllBytes(TestFiles.WriteStripes(dir.File("seed", $"a.{extension}"), 10, 30, colors, format))),
            new($"small.{extension}", File.ReadAllBytes(TestFiles.WriteStripes(dir.File("seed", $"b.{extension}"), 3, 5, colors, format))),
        ];
        if (structured is not null)
            seeds = [.. seeds, .. seeds.Select(s => s with { FileName = "structured-" + s.FileName, Mutate = structured })];
        const int size = 16;
        var pixels = new byte[3 * size * size];
        FuzzHarness.Run(extension, dir.Path, seeds, path => ImageDecoder.Decode(path, size, 3, pixels), CiCases,
            typeof(DataFormatException)).AssertNoFailures();
    }

    private static void ReadIdx(string path)
    {
        bool images = path.Contains("images", StringComparison.Ordinal);
        IdxData data = images ? IdxReader.ReadImages(path) : IdxReader.ReadLabels(path);
        long expected = data.Dimensions.Aggregate(1L, (a, d) => a * d);
        Assert.AreEqual(expected, data.Data.LongLength, "the payload disagrees with the dimensions");
        Assert.AreEqual(images ? 3 : 1, data.Dimensions.Count);
    }

    private static byte[] Pixels(int count) => Enumerable.Range(0, count).Select(i => (byte)(i * 7)).ToArray();
}
