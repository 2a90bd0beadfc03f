using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using MoCoV3.Checkpoints;
using static MoCoV3.Tests.Import.ImportTestFiles;
using static TorchSharp.torch;

namespace MoCoV3.Tests.Import;

/// <summary>
/// The safetensors reader and writer against the format as specified (u64 LE header length, JSON header, little-endian
/// row-major data), byte for byte in both directions, and the reader's refusals of damaged headers.
/// </summary>
[TestClass]
public sealed class SafeTensorsFileTests
{
    /// <summary>A file assembled by hand from the specification: 8-byte length, the JSON text, then the data bytes.</summary>
    private static string HandMade(string name, string headerJson, byte[] data)
    {
        string path = TempFile(name);
        byte[] header = Encoding.UTF8.GetBytes(headerJson);
        var bytes = new byte[8 + header.Length + data.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, (ulong)header.Length);
        header.CopyTo(bytes, 8);
        data.CopyTo(bytes, 8 + header.Length);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    /// <summary>F16 [1.5, -2] (0x3E00, 0xC000), F32 [[1, 2], [3, -0.25]], BF16 [1, -3] (0x3F80, 0xC040), I64 [7], F64 0.1.</summary>
    private static byte[] SpecData()
    {
        var data = new List<byte>();
        data.AddRange(new byte[] { 0x00, 0x3E, 0x00, 0xC0 });
        foreach (float f in new[] { 1f, 2f, 3f, -0.25f }) data.AddRange(BitConverter.GetBytes(f));
        data.AddRange(new byte[] { 0x80, 0x3F, 0x40, 0xC0 });
        data.AddRange(BitConverter.GetBytes(7L));
        data.AddRange(BitConverter.GetBytes(0.1));
        return data.ToArray();
    }

    private const string SpecHeader =
        """{"b":{"dtype":"F16","shape":[2],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[2,2],"data_offsets":[4,20]}""" +
        ""","c":{"dtype":"BF16","shape":[2],"data_offsets":[20,24]},"n":{"dtype":"I64","shape":[1],"data_offsets":[24,32]}""" +
        ""","s":{"dtype":"F64","shape":[],"data_offsets":[32,40]},"__metadata__":{"format":"pt","note":"x"}}""";

    [TestMethod]
    public void ReadsAFileWrittenToTheSpecification()
    {
        string path = HandMade("spec.safetensors", SpecHeader + "   ", SpecData());
        Assert.IsTrue(SafeTensorsFile.LooksLikeSafeTensors(path));
        using var content = SafeTensorsFile.Read(path);
        CollectionAssert.AreEqual(new[] { "b", "a", "c", "n", "s" }, content.Tensors.Select(t => t.Key).ToArray(), "header order");
        var t = content.Tensors.ToDictionary(kv => kv.Key, kv => kv.Value);
        Assert.AreEqual(ScalarType.Float16, t["b"].dtype);
        CollectionAssert.AreEqual(new[] { 1.5f, -2f }, t["b"].to(ScalarType.Float32).data<float>().ToArray());
        CollectionAssert.AreEqual(new long[] { 2, 2 }, t["a"].shape);
        CollectionAssert.AreEqual(new[] { 1f, 2f, 3f, -0.25f }, t["a"].data<float>().ToArray());
        Assert.AreEqual(ScalarType.BFloat16, t["c"].dtype);
        CollectionAssert.AreEqual(new[] { 1f, -3f }, t["c"].to(ScalarType.Float32).data<float>().ToArray());
        Assert.AreEqual(7L, t["n"].item<long>());
        Assert.AreEqual(0, t["s"].dim(), "shape [] is a scalar");
        Assert.AreEqual(0.1, t["s"].item<double>());
        Assert.AreEqual("pt", content.Metadata["format"]);
        Assert.AreEqual("x", content.Metadata["note"]);
    }

    [TestMethod]
    public void WritesTheSpecifiedLayoutAndReadsItBack()
    {
        string path = TempFile("written.safetensors");
        using var weight = arange(6, dtype: ScalarType.Float32).reshape(2, 3) * 0.5f;
        using var half = tensor(new[] { 1.5f, -2f }).to(ScalarType.Float16);
        using var counter = tensor(new[] { 42L });
        using var transposed = weight.t();   // not contiguous: stored row-major as [3, 2]
        SafeTensorsFile.Write(path, [new("w", weight), new("h", half), new("n", counter), new("wt", transposed)],
                              new Dictionary<string, string> { ["format"] = "pt", ["k"] = "ü" });

        byte[] bytes = File.ReadAllBytes(path);
        long n = (long)BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        Assert.AreEqual(0, (8 + n) % 8, "the data section starts 8-byte aligned");
        using var header = JsonDocument.Parse(bytes.AsMemory(8, (int)n));
        var root = header.RootElement;
        Assert.AreEqual("ü", root.GetProperty("__metadata__").GetProperty("k").GetString(), "metadata strings come back as written");
        var w = root.GetProperty("w");
        Assert.AreEqual("F32", w.GetProperty("dtype").GetString());
        Assert.AreEqual("[2,3]", w.GetProperty("shape").GetRawText());
        Assert.AreEqual("[0,24]", w.GetProperty("data_offsets").GetRawText());
        Assert.AreEqual("[24,28]", root.GetProperty("h").GetProperty("data_offsets").GetRawText());
        Assert.AreEqual("I64", root.GetProperty("n").GetProperty("dtype").GetString());
        Assert.AreEqual("[28,36]", root.GetProperty("n").GetProperty("data_offsets").GetRawText());
        Assert.AreEqual("[36,60]", root.GetProperty("wt").GetProperty("data_offsets").GetRawText());
        Assert.AreEqual(8 + n + 60, bytes.Length);
        int data = 8 + (int)n;
        Assert.AreEqual(2.5f, BitConverter.ToSingle(bytes, data + 5 * 4), "w[1,2] = 5 x 0.5, little-endian row-major");
        Assert.AreEqual(0x3E00, BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(data + 24)), "F16 1.5");
        Assert.AreEqual(42L, BitConverter.ToInt64(bytes, data + 28));
        Assert.AreEqual(1.5f, BitConverter.ToSingle(bytes, data + 36 + 1 * 4), "wt[0,1] = w[1,0] = 3 x 0.5");

        using var back = SafeTensorsFile.Read(path);
        var t = back.Tensors.ToDictionary(kv => kv.Key, kv => kv.Value);
        Assert.IsTrue(t["w"].equal(weight).all().item<bool>());
        Assert.IsTrue(t["h"].equal(half).all().item<bool>());
        Assert.IsTrue(t["wt"].equal(transposed).all().item<bool>());
        Assert.AreEqual(42L, t["n"].item<long>());
        Assert.IsFalse(File.Exists(path + ".tmp"), "written through DurableFile");
    }

    [TestMethod]
    [DataRow("length beyond the file", -1, "only")]
    [DataRow("length above the cap", 200L << 20, "more than the 104857600 accepted")]
    [DataRow("length too small", 1, "cannot hold a JSON object")]
    public void ImpossibleHeaderLengthsAreRefused(string what, long length, string expected)
    {
        string path = HandMade("len.safetensors", SpecHeader, SpecData());
        byte[] bytes = File.ReadAllBytes(path);
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, length < 0 ? (ulong)bytes.Length : (ulong)length);
        File.WriteAllBytes(path, bytes);
        var e = Assert.ThrowsExactly<InvalidDataException>(() => SafeTensorsFile.Read(path).Dispose(), what);
        StringAssert.StartsWith(e.Message, path + ": ");
        StringAssert.Contains(e.Message, expected);
    }

    [TestMethod]
    [DataRow("""{"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},"b":{"dtype":"F32","shape":[1],"data_offsets":[12,16]}}""", 16, "tensor 'b' [12, 16] overlaps tensor 'a'")]
    [DataRow("""{"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,20]}}""", 20, "needs 16 bytes, but data_offsets [0, 20] hold 20")]
    [DataRow("""{"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}}""", 12, "do not lie inside the 12-byte data section")]
    [DataRow("""{"a":{"dtype":"F32","shape":[2,2],"data_offsets":[4,20]}}""", 20, "4 bytes before tensor 'a' belong to no tensor")]
    [DataRow("""{"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}}""", 24, "the tensors end at byte 16 of a 24-byte data section")]
    [DataRow("""{"a":{"dtype":"F32","shape":[2147483648,2147483648],"data_offsets":[0,16]}}""", 16, "needs more than 2^63 bytes")]
    [DataRow("""{"a":{"dtype":"F32","shape":[-4],"data_offsets":[0,16]}}""", 16, "is not a list of non-negative integers")]
    [DataRow("""{"a":{"dtype":"F32","shape":[1,1,1,1,1,1,1,1,4],"data_offsets":[0,16]}}""", 16, "9 dimensions")]
    [DataRow("""{"a":{"dtype":"I8","shape":[16],"data_offsets":[0,16]}}""", 16, "safetensors tensor 'a' has dtype I8, which is not read here")]
    [DataRow("""{"a":{"dtype":"Q4","shape":[16],"data_offsets":[0,16]}}""", 16, "tensor 'a': unknown dtype 'Q4'")]
    [DataRow("""{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16],"extra":1}}""", 16, "unexpected or repeated field 'extra'")]
    [DataRow("""{"a":{"dtype":"F32","shape":[4],"data_offsets":[0]}}""", 16, "data_offsets has 1 values")]
    [DataRow("""{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}""", 16, "'a' appears twice")]
    [DataRow("""{"a":[1,2]}""", 16, "tensor 'a': a JSON Array")]
    [DataRow("""{"__metadata__":{"n":1},"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}""", 16, "__metadata__ 'n' is a JSON Number, not a string")]
    [DataRow("""{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]""", 16, "not valid JSON")]
    [DataRow("""{"a":{"dtype":"F32","shape":[[[[[4]]]]],"data_offsets":[0,16]}}""", 16, "not valid JSON")]
    public void DamagedHeadersAreRefusedNamingTheFileAndTheTensor(string header, int dataBytes, string expected)
    {
        string path = HandMade("bad.safetensors", header, new byte[dataBytes]);
        var e = Assert.ThrowsExactly<InvalidDataException>(() => SafeTensorsFile.Read(path).Dispose());
        StringAssert.StartsWith(e.Message, path + ": ");
        StringAssert.Contains(e.Message, expected);
    }

    [TestMethod]
    public void WriterRefusesWhatTheFormatCannotHold()
    {
        string path = TempFile("w.safetensors");
        using var a = zeros(2);
        using var b = zeros(2, dtype: ScalarType.Int8);
        var e = Assert.ThrowsExactly<ArgumentException>(() => SafeTensorsFile.Write(path, [new("a", a), new("a", a)]));
        StringAssert.Contains(e.Message, "'a' given twice");
        e = Assert.ThrowsExactly<ArgumentException>(() => SafeTensorsFile.Write(path, [new("__metadata__", a)]));
        StringAssert.Contains(e.Message, "cannot name a safetensors tensor");
        e = Assert.ThrowsExactly<ArgumentException>(() => SafeTensorsFile.Write(path, [new("b", b)]));
        StringAssert.Contains(e.Message, "Int8");
        Assert.IsFalse(File.Exists(path));
    }
}
