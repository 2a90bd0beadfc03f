using MoCoV3.Data;

namespace MoCoV3.Tests.Data;

[TestClass]
public sealed class IdxReaderTests
{
    private static readonly byte[] Payload = Enumerable.Range(0, 2 * 3 * 4).Select(i => (byte)(i * 7 + 1)).ToArray();

    [TestMethod]
    [DataRow(false)]
    [DataRow(true)]
    public void ImagesRoundTrip(bool gzip)
    {
        using var dir = new TempDir();
        // The name does not say .gz for the compressed file: compression is detected from the content.
        string path = TestFiles.WriteIdx(dir.File("images-idx3-ubyte"), [2, 3, 4], Payload, gzip);

        IdxData data = IdxReader.ReadImages(path);

        CollectionAssert.AreEqual(new[] { 2, 3, 4 }, data.Dimensions.ToArray());
        CollectionAssert.AreEqual(Payload, data.Data);
        Assert.AreEqual(2, data.Count);
        Assert.AreEqual(gzip, data.Compressed);
        Assert.AreEqual(gzip, IdxReader.IsGzip(path));
    }

    [TestMethod]
    public void LabelsRoundTripFromGz()
    {
        using var dir = new TempDir();
        byte[] labels = [9, 0, 0, 3, 255];
        string path = TestFiles.WriteIdx(dir.File("labels-idx1-ubyte.gz"), [labels.Length], labels, gzip: true);

        IdxData data = IdxReader.ReadLabels(path);

        CollectionAssert.AreEqual(labels, data.Data);
        CollectionAssert.AreEqual(new[] { 5 }, data.Dimensions.ToArray());
    }

    [TestMethod]
    [DataRow(false)]
    [DataRow(true)]
    public void TruncatedPayloadIsRefused(bool gzip)
    {
        using var dir = new TempDir();
        byte[] bytes = TestFiles.IdxBytes([2, 3, 4], Payload);
        byte[] truncated = bytes[..^5];
        string path = dir.File("cut-idx3-ubyte");
        File.WriteAllBytes(path, gzip ? TestFiles.Gzip(truncated) : truncated);

        var e = Assert.ThrowsExactly<DataFormatException>(() => IdxReader.ReadImages(path));

        StringAssert.StartsWith(e.Message, path);
        StringAssert.Contains(e.Message, "truncated");
        Assert.AreEqual(path, e.File);
        // Plain: refused from the file length before reading, at the payload start. Gzip: where the data ends.
        Assert.AreEqual(gzip ? 16 + Payload.Length - 5 : 16, e.Offset);
    }

    [TestMethod]
    public void TruncatedHeaderIsRefused()
    {
        using var dir = new TempDir();
        string path = dir.File("short-idx3-ubyte");
        File.WriteAllBytes(path, TestFiles.IdxBytes([2, 3, 4], Payload)[..10]);

        var e = Assert.ThrowsExactly<DataFormatException>(() => IdxReader.ReadImages(path));

        StringAssert.Contains(e.Message, "short-idx3-ubyte");
        StringAssert.Contains(e.Message, "dimension 1");
        Assert.AreEqual(10L, e.Offset);
    }

    [TestMethod]
    public void WrongMagicIsRefused()
    {
        using var dir = new TempDir();
        string path = dir.File("labels-as-images");
        TestFiles.WriteIdx(path, [Payload.Length], Payload); // magic 0x00000801, read as images (0x00000803)

        var e = Assert.ThrowsExactly<DataFormatException>(() => IdxReader.ReadImages(path));

        StringAssert.StartsWith(e.Message, path);
        StringAssert.Contains(e.Message, "0x00000803");
        StringAssert.Contains(e.Message, "found 0x00000801");
        Assert.AreEqual(0L, e.Offset);
    }

    [TestMethod]
    public void NonIdxFileIsRefused()
    {
        using var dir = new TempDir();
        string path = dir.File("notes.txt");
        File.WriteAllText(path, "hello, this is not an IDX file at all");

        var e = Assert.ThrowsExactly<DataFormatException>(() => IdxReader.ReadLabels(path));

        StringAssert.Contains(e.Message, "notes.txt");
        Assert.AreEqual(0L, e.Offset);
    }

    [TestMethod]
    [DataRow(false)]
    [DataRow(true)]
    public void HeaderDimsLargerThanPayloadAreRefused(bool gzip)
    {
        using var dir = new TempDir();
        // The header claims 60000 images of 28x28 (47 MB), the file holds 24 bytes.
        byte[] bytes = TestFiles.IdxBytes([60000, 28, 28], Payload);
        string path = dir.File("liar-idx3-ubyte");
        File.WriteAllBytes(path, gzip ? TestFiles.Gzip(bytes) : bytes);

        var e = Assert.ThrowsExactly<DataFormatException>(() => IdxReader.ReadImages(path));

        StringAssert.StartsWith(e.Message, path);
        StringAssert.Contains(e.Message, "60000x28x28");
        StringAssert.Contains(e.Message, "47040000");
        Assert.AreEqual(16L, e.Offset);
    }

    [TestMethod]
    public void HugeDimsAreRefusedBeforeAllocating()
    {
        using var dir = new TempDir();
        string path = dir.File("huge-idx3-ubyte");
        TestFiles.WriteIdx(path, [100_000, 100_000, 2], Payload);

        var e = Assert.ThrowsExactly<DataFormatException>(() => IdxReader.ReadImages(path));

        StringAssert.Contains(e.Message, "huge-idx3-ubyte");
        Assert.AreEqual(8L, e.Offset); // the second dimension already makes it too large
    }

    [TestMethod]
    public void NegativeDimIsRefused()
    {
        using var dir = new TempDir();
        string path = dir.File("negative-idx1-ubyte");
        TestFiles.WriteIdx(path, [-1], Payload);

        var e = Assert.ThrowsExactly<DataFormatException>(() => IdxReader.ReadLabels(path));

        StringAssert.Contains(e.Message, "4294967295");
        Assert.AreEqual(4L, e.Offset);
    }

    [TestMethod]
    [DataRow(false)]
    [DataRow(true)]
    public void ExtraBytesAfterPayloadAreRefused(bool gzip)
    {
        using var dir = new TempDir();
        byte[] bytes = [.. TestFiles.IdxBytes([2, 3, 4], Payload), 1, 2, 3];
        string path = dir.File("long-idx3-ubyte");
        File.WriteAllBytes(path, gzip ? TestFiles.Gzip(bytes) : bytes);

        var e = Assert.ThrowsExactly<DataFormatException>(() => IdxReader.ReadImages(path));

        StringAssert.StartsWith(e.Message, path);
        Assert.AreEqual(gzip ? 16L + Payload.Length : 16L, e.Offset);
    }

    [TestMethod]
    public void CorruptGzipIsRefused()
    {
        using var dir = new TempDir();
        string path = dir.File("garbage-idx3-ubyte.gz");
        // The gzip magic, then garbage.
        byte[] garbage = [0x1f, 0x8b, .. Enumerable.Range(0, 200).Select(i => (byte)(i * 37 + 11))];
        File.WriteAllBytes(path, garbage);

        var e = Assert.ThrowsExactly<DataFormatException>(() => IdxReader.ReadImages(path));

        StringAssert.StartsWith(e.Message, path);
        StringAssert.Contains(e.Message, "gzip");
        Assert.AreEqual(0L, e.Offset);
    }

    [TestMethod]
    public void CorruptedGzipPayloadIsRefused()
    {
        using var dir = new TempDir();
        byte[] payload = Enumerable.Range(0, 5000).Select(i => (byte)(i * i)).ToArray();
        byte[] gz = TestFiles.Gzip(TestFiles.IdxBytes([5000], payload));
        gz[gz.Length / 2] ^= 0xff; // flip bits in the middle of the deflate stream
        string path = dir.File("flipped-idx1-ubyte.gz");
        File.WriteAllBytes(path, gz);

        var e = Assert.ThrowsExactly<DataFormatException>(() => IdxReader.ReadLabels(path));

        StringAssert.StartsWith(e.Message, path);
        Assert.IsNotNull(e.Offset);
    }

    [TestMethod]
    public void MissingFileNamesThePath()
    {
        string path = Path.Combine(Path.GetTempPath(), "no-such-dir-" + Guid.NewGuid().ToString("N"), "x-idx3-ubyte");

        var e = Assert.ThrowsExactly<FileNotFoundException>(() => IdxReader.ReadImages(path));

        StringAssert.Contains(e.Message, path);
    }
}
