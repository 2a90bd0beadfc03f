using MoCoV3.Data;
using SkiaSharp;

namespace MoCoV3.Tests.Data;

[TestClass]
public sealed class DatasetFactoryTests
{
    [TestMethod]
    public void AutoOpensACsvFile()
    {
        using var dir = new TempDir();
        TestFiles.WriteSolid(dir.File("a.png"), 4, 4, SKColors.Red, SKEncodedImageFormat.Png);
        string csv = dir.File("Set.CSV");
        File.WriteAllText(csv, "path,label\na.png,x\n");

        IImageDataset data = DatasetFactory.Open("auto", csv, 8, 3, train: true);

        Assert.IsInstanceOfType<CsvManifestDataset>(data);
        Assert.AreEqual(1, data.Count);
    }

    [TestMethod]
    public void AutoOpensAFolderOfIdxFilesAsFashionMnist()
    {
        using var dir = new TempDir();
        TestFiles.WriteFashionLike(dir.Path, train: true, count: 3, label: _ => 4, gzip: false);
        TestFiles.WriteFashionLike(dir.Path, train: false, count: 2, label: _ => 5, gzip: false);

        IImageDataset train = DatasetFactory.Open("auto", dir.Path, 28, 1, train: true);
        IImageDataset test = DatasetFactory.Open("AUTO", dir.Path, 28, 1, train: false);

        Assert.IsInstanceOfType<InMemoryImageDataset>(train);
        Assert.AreEqual(3, train.Count);
        Assert.AreEqual(2, test.Count);
    }

    [TestMethod]
    public void AutoOpensTheSplitSubFolderOfAnImageFolder()
    {
        using var dir = new TempDir();
        TestFiles.WriteSolid(dir.File("train", "cat", "1.png"), 4, 4, SKColors.Red, SKEncodedImageFormat.Png);
        TestFiles.WriteSolid(dir.File("train", "cat", "2.png"), 4, 4, SKColors.Red, SKEncodedImageFormat.Png);
        TestFiles.WriteSolid(dir.File("train", "dog", "3.png"), 4, 4, SKColors.Red, SKEncodedImageFormat.Png);
        TestFiles.WriteSolid(dir.File("val", "dog", "4.png"), 4, 4, SKColors.Red, SKEncodedImageFormat.Png);

        IImageDataset train = DatasetFactory.Open("auto", dir.Path, 8, 3, train: true);
        IImageDataset eval = DatasetFactory.Open("imagefolder", dir.Path, 8, 3, train: false);

        Assert.IsInstanceOfType<ImageFolderDataset>(train);
        Assert.AreEqual(3, train.Count);
        Assert.AreEqual(Path.Combine(dir.Path, "train"), train.Source);
        Assert.AreEqual(1, eval.Count);
        Assert.AreEqual(Path.Combine(dir.Path, "val"), eval.Source);
    }

    [TestMethod]
    public void AutoOpensAPlainImageFolder()
    {
        using var dir = new TempDir();
        TestFiles.WriteSolid(dir.File("train", "1.png"), 4, 4, SKColors.Red, SKEncodedImageFormat.Png);
        TestFiles.WriteSolid(dir.File("other", "2.png"), 4, 4, SKColors.Red, SKEncodedImageFormat.Png);

        // No test/val folder: "train" is just a class.
        IImageDataset data = DatasetFactory.Open("auto", dir.Path, 8, 3, train: true);

        CollectionAssert.AreEqual(new[] { "other", "train" }, data.ClassNames.ToArray());
    }

    [TestMethod]
    public void NullPathMeansTheDefaultFashionMnistFolder()
    {
        TestData.RequireFashionMnist();

        IImageDataset test = DatasetFactory.Open("auto", null, 28, 1, train: false);

        Assert.AreEqual(10000, test.Count);
        Assert.AreEqual(FashionMnist.ClassNames.Count, test.ClassNames.Count);
    }

    [TestMethod]
    [DataRow(224, 3)]
    [DataRow(28, 3)]
    [DataRow(32, 1)]
    public void FashionMnistRefusesAnotherImageShape(int size, int channels)
    {
        var e = Assert.ThrowsExactly<ArgumentException>(() => DatasetFactory.Open("fashion-mnist", null, size, channels, true));

        StringAssert.Contains(e.Message, "28x28");
        StringAssert.Contains(e.Message, "preset");
    }

    [TestMethod]
    public void UnknownKindIsRefused()
    {
        var e = Assert.ThrowsExactly<ArgumentException>(() => DatasetFactory.Open("tfrecord", "/tmp", 8, 3, true));

        StringAssert.Contains(e.Message, "tfrecord");
        StringAssert.Contains(e.Message, "imagefolder");
    }

    [TestMethod]
    public void MissingPathIsNamed()
    {
        string path = Path.Combine(Path.GetTempPath(), "no-data-" + Guid.NewGuid().ToString("N"));

        var auto = Assert.ThrowsExactly<FileNotFoundException>(() => DatasetFactory.Open("auto", path, 8, 3, true));
        var folder = Assert.ThrowsExactly<DirectoryNotFoundException>(() => DatasetFactory.Open("imagefolder", path, 8, 3, true));

        StringAssert.Contains(auto.Message, path);
        StringAssert.Contains(folder.Message, path);
    }

    [TestMethod]
    public void CsvKindNeedsAPath()
    {
        Assert.ThrowsExactly<ArgumentException>(() => DatasetFactory.Open("csv", null, 8, 3, true));
    }
}
