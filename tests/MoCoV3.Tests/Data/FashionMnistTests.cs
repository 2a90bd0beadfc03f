using MoCoV3.Data;

namespace MoCoV3.Tests.Data;

[TestClass]
public sealed class FashionMnistTests
{
    [TestMethod]
    public void RealTrainingSplitLoads()
    {
        TestData.RequireFashionMnist();

        InMemoryImageDataset train = FashionMnist.Load(null, train: true);

        Assert.AreEqual(60000, train.Count);
        Assert.AreEqual(1, train.Channels);
        Assert.AreEqual(28, train.Height);
        Assert.AreEqual(28, train.Width);
        Assert.AreEqual(10, train.ClassNames.Count);
        // Checked with zcat | xxd: the first training labels are 9 0 0 3 0 2 7 2 5 5, the last is 5.
        Assert.AreEqual(9, train.GetLabel(0));
        Assert.AreEqual("Ankle boot", train.ClassNames[train.GetLabel(0)]);
        Assert.AreEqual(3, train.GetLabel(3));
        Assert.AreEqual(5, train.GetLabel(59999));
        // Pixel sums of the first and last images, computed independently with Python's gzip module.
        Assert.AreEqual(76247, Sum(train.GetImage(0)));
        Assert.AreEqual(16684, Sum(train.GetImage(59999)));

        var counts = new int[10];
        for (int i = 0; i < train.Count; i++)
            counts[train.GetLabel(i)]++;
        CollectionAssert.AreEqual(Enumerable.Repeat(6000, 10).ToArray(), counts);
    }

    [TestMethod]
    public void RealTestSplitLoads()
    {
        TestData.RequireFashionMnist();

        InMemoryImageDataset test = FashionMnist.Load(FashionMnist.DefaultFolder, train: false);

        Assert.AreEqual(10000, test.Count);
        Assert.AreEqual(9, test.GetLabel(0));
        Assert.AreEqual(2, test.GetLabel(1));
        Assert.AreEqual(33456, Sum(test.GetImage(0)));
    }

    [TestMethod]
    public void LimitKeepsTheFirstImages()
    {
        TestData.RequireFashionMnist();

        InMemoryImageDataset test = FashionMnist.Load(null, train: false, limit: 3);

        Assert.AreEqual(3, test.Count);
        Assert.AreEqual(33456, Sum(test.GetImage(0)));
        Assert.AreEqual(1, test.GetLabel(2));
    }

    [TestMethod]
    public void ClassNamesAreTheFashionMnistOnes()
    {
        CollectionAssert.AreEqual(
            new[] { "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot" },
            FashionMnist.ClassNames.ToArray());
    }

    [TestMethod]
    [DataRow(false)]
    [DataRow(true)]
    public void LoadsUncompressedAndCompressedFiles(bool gzip)
    {
        using var dir = new TempDir();
        TestFiles.WriteFashionLike(dir.Path, train: false, count: 4, label: i => (byte)(9 - i), gzip);

        InMemoryImageDataset data = FashionMnist.Load(dir.Path, train: false);

        Assert.AreEqual(4, data.Count);
        Assert.AreEqual(9, data.GetLabel(0));
        Assert.AreEqual(6, data.GetLabel(3));
        Assert.AreEqual((byte)2, data.GetImage(2)[400]);
        Assert.IsTrue(FashionMnist.ContainsIdxFiles(dir.Path));
    }

    [TestMethod]
    public void MissingFolderSaysHowToInstall()
    {
        string folder = Path.Combine(Path.GetTempPath(), "no-fashion-" + Guid.NewGuid().ToString("N"));

        var e = Assert.ThrowsExactly<DirectoryNotFoundException>(() => FashionMnist.Load(folder, train: true));

        StringAssert.Contains(e.Message, folder);
        StringAssert.Contains(e.Message, "apt-get install dataset-fashion-mnist");
        StringAssert.Contains(e.Message, "--data");
    }

    [TestMethod]
    public void MissingFileIsNamed()
    {
        using var dir = new TempDir();
        TestFiles.WriteFashionLike(dir.Path, train: true, count: 2, label: _ => 1, gzip: true);

        var e = Assert.ThrowsExactly<FileNotFoundException>(() => FashionMnist.Load(dir.Path, train: false));

        StringAssert.Contains(e.Message, "t10k-images-idx3-ubyte.gz");
    }

    [TestMethod]
    public void ImageAndLabelCountsMustAgree()
    {
        using var dir = new TempDir();
        TestFiles.WriteFashionLike(dir.Path, train: true, count: 5, label: _ => 1, gzip: true, labelCount: 4);

        var e = Assert.ThrowsExactly<DataFormatException>(() => FashionMnist.Load(dir.Path, train: true));

        StringAssert.Contains(e.Message, "train-labels-idx1-ubyte.gz");
        StringAssert.Contains(e.Message, "expected 5 labels");
        StringAssert.Contains(e.Message, "found 4");
    }

    [TestMethod]
    public void LabelOutOfRangeIsRefused()
    {
        using var dir = new TempDir();
        TestFiles.WriteFashionLike(dir.Path, train: true, count: 3, label: i => (byte)(i == 2 ? 10 : 0), gzip: false);

        var e = Assert.ThrowsExactly<DataFormatException>(() => FashionMnist.Load(dir.Path, train: true));

        StringAssert.Contains(e.Message, "train-labels-idx1-ubyte");
        StringAssert.Contains(e.Message, "found 10");
        Assert.AreEqual(8L + 2, e.Offset);
    }

    [TestMethod]
    public void ImagesMustBe28By28()
    {
        using var dir = new TempDir();
        TestFiles.WriteIdx(dir.File("train-images-idx3-ubyte"), [1, 32, 32], new byte[32 * 32]);
        TestFiles.WriteIdx(dir.File("train-labels-idx1-ubyte"), [1], [0]);

        var e = Assert.ThrowsExactly<DataFormatException>(() => FashionMnist.Load(dir.Path, train: true));

        StringAssert.Contains(e.Message, "32x32");
    }

    private static int Sum(ReadOnlySpan<byte> bytes)
    {
        int sum = 0;
        foreach (byte b in bytes)
            sum += b;
        return sum;
    }
}
