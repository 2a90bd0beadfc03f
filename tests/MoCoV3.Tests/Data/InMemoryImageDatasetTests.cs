using MoCoV3.Data;

namespace MoCoV3.Tests.Data;

[TestClass]
public sealed class InMemoryImageDatasetTests
{
    [TestMethod]
    public void ReadBatchCopiesTheRequestedImages()
    {
        // 3 images of 2x1x2: image i has pixels 10i..10i+3.
        byte[] pixels = [0, 1, 2, 3, 10, 11, 12, 13, 20, 21, 22, 23];
        var data = new InMemoryImageDataset("mem", pixels, [2, 0, 1], 2, 1, 2, ["a", "b", "c"]);
        var batch = new byte[8];
        var labels = new long[2];

        data.ReadBatch([2, 0], batch, labels);

        CollectionAssert.AreEqual(new byte[] { 20, 21, 22, 23, 0, 1, 2, 3 }, batch);
        CollectionAssert.AreEqual(new long[] { 1, 2 }, labels);
    }

    [TestMethod]
    public void LabelOutOfRangeIsRefused()
    {
        var e = Assert.ThrowsExactly<ArgumentException>(
            () => new InMemoryImageDataset("mem", new byte[2], [0, 3], 1, 1, 1, ["a", "b", "c"]));

        StringAssert.Contains(e.Message, "image 1");
        StringAssert.Contains(e.Message, "found 3");
    }

    [TestMethod]
    public void PixelCountMustMatch()
    {
        Assert.ThrowsExactly<ArgumentException>(() => new InMemoryImageDataset("mem", new byte[5], [0, 0], 1, 1, 2, ["a"]));
    }

    [TestMethod]
    public void IndexOutOfRangeIsRefused()
    {
        var data = new InMemoryImageDataset("mem", new byte[2], [0, 0], 1, 1, 1, ["a"]);

        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => data.ReadBatch([2], new byte[1], new long[1]));
    }
}
