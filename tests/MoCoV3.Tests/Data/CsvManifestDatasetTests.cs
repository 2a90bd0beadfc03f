using MoCoV3.Data;
using SkiaSharp;

namespace MoCoV3.Tests.Data;

[TestClass]
public sealed class CsvManifestDatasetTests
{
    private static readonly SKColor Red = new(255, 0, 0);
    private static readonly SKColor Blue = new(0, 0, 255);

    [TestMethod]
    public void ReadsRelativeAndAbsolutePathsWithSortedClasses()
    {
        using var dir = new TempDir();
        TestFiles.WriteSolid(dir.File("img", "r.png"), 12, 12, Red, SKEncodedImageFormat.Png);
        string absolute = TestFiles.WriteSolid(dir.File("elsewhere", "b.jpg"), 20, 10, Blue, SKEncodedImageFormat.Jpeg);
        string csv = dir.File("list", "manifest.csv");
        Directory.CreateDirectory(Path.GetDirectoryName(csv)!);
        // Extra columns are ignored, and the column order does not matter.
        File.WriteAllText(csv, $"label,path,note\nzebra,../img/r.png,x\napple,{absolute},\"quoted, with comma\"\nzebra,../img/r.png,y\n");

        var data = new CsvManifestDataset(csv, 8, 3);

        CollectionAssert.AreEqual(new[] { "apple", "zebra" }, data.ClassNames.ToArray());
        CollectionAssert.AreEqual(new[] { 1, 0, 1 }, data.Labels.ToArray());
        Assert.AreEqual(Path.GetFullPath(dir.File("img", "r.png")), data.Paths[0]);
        Assert.AreEqual(absolute, data.Paths[1]);

        var pixels = new byte[2 * 3 * 64];
        var labels = new long[2];
        data.ReadBatch([1, 0], pixels, labels);
        CollectionAssert.AreEqual(new long[] { 0, 1 }, labels);
        ImageFolderDatasetTests.AssertSolid(pixels, 0, 3, 64, Blue, tolerance: 8);
        ImageFolderDatasetTests.AssertSolid(pixels, 1, 3, 64, Red, tolerance: 0);
    }

    [TestMethod]
    public void MissingFileNamesTheCsvLine()
    {
        using var dir = new TempDir();
        TestFiles.WriteSolid(dir.File("a.png"), 4, 4, Red, SKEncodedImageFormat.Png);
        string csv = dir.File("m.csv");
        File.WriteAllText(csv, "path,label\na.png,red\n\nmissing.png,red\n");

        var e = Assert.ThrowsExactly<DataFormatException>(() => new CsvManifestDataset(csv, 8, 3));

        StringAssert.StartsWith(e.Message, csv);
        StringAssert.Contains(e.Message, "line 4"); // the empty line 3 counts
        StringAssert.Contains(e.Message, "missing.png");
        Assert.AreEqual(csv, e.File);
        Assert.AreEqual(4L, e.Offset);
    }

    [TestMethod]
    public void MissingColumnNamesTheLine()
    {
        using var dir = new TempDir();
        TestFiles.WriteSolid(dir.File("a.png"), 4, 4, Red, SKEncodedImageFormat.Png);
        string csv = dir.File("m.csv");
        File.WriteAllText(csv, "path,label\na.png,red\na.png\n");

        var e = Assert.ThrowsExactly<DataFormatException>(() => new CsvManifestDataset(csv, 8, 3));

        StringAssert.Contains(e.Message, "line 3");
        StringAssert.Contains(e.Message, "found 1");
    }

    [TestMethod]
    public void EmptyPathNamesTheLine()
    {
        using var dir = new TempDir();
        string csv = dir.File("m.csv");
        File.WriteAllText(csv, "path,label\n,red\n");

        var e = Assert.ThrowsExactly<DataFormatException>(() => new CsvManifestDataset(csv, 8, 3));

        StringAssert.Contains(e.Message, "line 2");
        StringAssert.Contains(e.Message, "empty path");
    }

    [TestMethod]
    public void HeaderWithoutLabelIsRefused()
    {
        using var dir = new TempDir();
        string csv = dir.File("m.csv");
        File.WriteAllText(csv, "path,class\na.png,red\n");

        var e = Assert.ThrowsExactly<DataFormatException>(() => new CsvManifestDataset(csv, 8, 3));

        StringAssert.StartsWith(e.Message, csv);
        StringAssert.Contains(e.Message, "line 1");
        StringAssert.Contains(e.Message, "path,class");
    }

    [TestMethod]
    public void MalformedQuotingNamesTheLine()
    {
        using var dir = new TempDir();
        TestFiles.WriteSolid(dir.File("a.png"), 4, 4, Red, SKEncodedImageFormat.Png);
        string csv = dir.File("m.csv");
        File.WriteAllText(csv, "path,label\na.png,red\na.png,\"re\"d\"\n");

        var e = Assert.ThrowsExactly<DataFormatException>(() => new CsvManifestDataset(csv, 8, 3));

        StringAssert.StartsWith(e.Message, csv);
        StringAssert.Contains(e.Message, "line 3");
    }

    [TestMethod]
    public void UnclosedQuoteIsRefused()
    {
        using var dir = new TempDir();
        TestFiles.WriteSolid(dir.File("a.png"), 4, 4, Red, SKEncodedImageFormat.Png);
        string csv = dir.File("m.csv");
        // The quote opened on line 3 never closes; the rest of the (large) file would be one field.
        File.WriteAllText(csv, "path,label\na.png,red\na.png,\"red\n" + string.Concat(Enumerable.Repeat("a.png,red\n", 200_000)));

        var e = Assert.ThrowsExactly<DataFormatException>(() => new CsvManifestDataset(csv, 8, 3));

        StringAssert.StartsWith(e.Message, csv);
        StringAssert.Contains(e.Message, "line 3");
    }

    [TestMethod]
    public void HeaderOnlyIsRefused()
    {
        using var dir = new TempDir();
        string csv = dir.File("m.csv");
        File.WriteAllText(csv, "path,label\n");

        var e = Assert.ThrowsExactly<DataFormatException>(() => new CsvManifestDataset(csv, 8, 3));

        StringAssert.Contains(e.Message, "at least one row");
    }

    [TestMethod]
    public void CorruptImageNamesTheImageFile()
    {
        using var dir = new TempDir();
        string bad = dir.File("bad.jpg");
        File.WriteAllText(bad, "definitely not a jpeg");
        string csv = dir.File("m.csv");
        File.WriteAllText(csv, "path,label\nbad.jpg,x\n");
        var data = new CsvManifestDataset(csv, 8, 1);

        var e = Assert.ThrowsExactly<DataFormatException>(() => data.ReadBatch([0], new byte[64], new long[1]));

        Assert.AreEqual(bad, e.File);
    }

    [TestMethod]
    public void MissingCsvIsNamed()
    {
        string csv = Path.Combine(Path.GetTempPath(), "no-" + Guid.NewGuid().ToString("N") + ".csv");

        var e = Assert.ThrowsExactly<FileNotFoundException>(() => new CsvManifestDataset(csv, 8, 3));

        StringAssert.Contains(e.Message, csv);
    }
}
