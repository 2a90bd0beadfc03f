using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;
using MoCoV3.Checkpoints;

namespace MoCoV3.Tests.Import;

/// <summary>
/// Hostile <c>torch.save</c> files, built by hand: a pickle that calls <c>posix.system</c> (what a Python
/// <c>__reduce__</c> payload compiles to), <c>builtins.eval</c> through STACK_GLOBAL, inflated length fields, tensors
/// bigger than their storage, deep nesting. Each is refused by the pre-scan with the file, the opcode's offset and
/// what was refused, before anything is unpickled.
/// </summary>
[TestClass]
public sealed class PickleSafetyTests
{
    [TestMethod]
    [DataRow("posix", "system")]
    [DataRow("os", "system")]
    [DataRow("builtins", "exec")]
    [DataRow("subprocess", "Popen")]
    public void AReducePayloadIsRefusedNamingTheGlobalAndItsOffset(string module, string name)
    {
        string marker = Path.Combine(TestData.NewFolder(), "pwned");
        // PROTO 2; GLOBAL module name; BINUNICODE 'touch marker'; TUPLE1; REDUCE; STOP
        byte[] pickle = [0x80, 0x02, .. Global(module, name), .. Unicode($"touch {marker}"), 0x85, (byte)'R', (byte)'.'];
        string path = Archive("evil.pth", pickle);

        var e = Assert.ThrowsExactly<InvalidDataException>(() => PyTorchFile.Read(path));
        StringAssert.StartsWith(e.Message, $"{path}: data.pkl at byte 2: refused GLOBAL '{module}.{name}'");
        var viaImport = Assert.ThrowsExactly<InvalidDataException>(() => CheckpointImporter.Load(path, null, null));
        Assert.AreEqual(e.Message, viaImport.Message);
        Assert.IsFalse(File.Exists(marker), "the payload ran");
    }

    [TestMethod]
    public void AStackGlobalIsCheckedLikeAGlobal()
    {
        // PROTO 4; SHORT_BINUNICODE 'builtins'; MEMOIZE; SHORT_BINUNICODE 'eval'; MEMOIZE; STACK_GLOBAL (at byte 20)
        byte[] pickle = [0x80, 0x04, .. ShortUnicode("builtins"), 0x94, .. ShortUnicode("eval"), 0x94, 0x93, .. Unicode("1+1"), 0x85, (byte)'R', (byte)'.'];
        string path = Archive("eval.pth", pickle);

        var e = Assert.ThrowsExactly<InvalidDataException>(() => PyTorchFile.Read(path));
        StringAssert.StartsWith(e.Message, $"{path}: data.pkl at byte 20: refused STACK_GLOBAL 'builtins.eval'");
    }

    [TestMethod]
    public void ALengthFieldBeyondTheDataIsRefusedBeforeAllocating()
    {
        // PROTO 2; BINUNICODE with a length of 2^31 - 1 and 3 bytes behind it
        byte[] pickle = [0x80, 0x02, (byte)'X', 0xFF, 0xFF, 0xFF, 0x7F, (byte)'a', (byte)'b', (byte)'.'];
        string path = Archive("long.pth", pickle);

        var e = Assert.ThrowsExactly<InvalidDataException>(() => PyTorchFile.Read(path));
        StringAssert.StartsWith(e.Message, $"{path}: data.pkl at byte 2: a length field announces 2147483647 bytes, only 3 are left");
    }

    [TestMethod]
    public void ATensorLargerThanItsStorageIsRefused()
    {
        // {'w': _rebuild_tensor_v2(('storage', FloatStorage, '0', 'cpu', 4), 0, (1000000, 1000000), (1000000, 1), False, OrderedDict())}
        byte[] storage = new byte[16];
        byte[] pickle =
        [
            0x80, 0x02, (byte)'}', .. Unicode("w"),
            .. Global("torch._utils", "_rebuild_tensor_v2"),
            (byte)'(',
            (byte)'(', .. Unicode("storage"), .. Global("torch", "FloatStorage"), .. Unicode("0"), .. Unicode("cpu"), (byte)'K', 4, (byte)'t',
            (byte)'Q',
            (byte)'K', 0, .. Int(1000000), .. Int(1000000), 0x86, .. Int(1000000), (byte)'K', 1, 0x86, 0x89,
            .. Global("collections", "OrderedDict"), (byte)')', (byte)'R',
            (byte)'t', (byte)'R', (byte)'s', (byte)'.',
        ];
        string path = Archive("huge.pth", pickle, ("archive/data/0", storage));

        var e = Assert.ThrowsExactly<InvalidDataException>(() => PyTorchFile.Read(path));
        StringAssert.Contains(e.Message, "the tensor's size [1000000,1000000] needs more than the 4 elements of storage '0'");
        StringAssert.StartsWith(e.Message, $"{path}: data.pkl at byte ");
    }

    [TestMethod]
    public void DeepNestingIsRefused()
    {
        // 1000 lists, each appended to the one before: [[[[…]]]]
        var pickle = new List<byte> { 0x80, 0x02 };
        for (int i = 0; i < 1000; i++) pickle.Add((byte)']');
        for (int i = 0; i < 999; i++) pickle.Add((byte)'a');
        pickle.Add((byte)'.');
        string path = Archive("deep.pth", [.. pickle]);

        var e = Assert.ThrowsExactly<InvalidDataException>(() => PyTorchFile.Read(path));
        StringAssert.Contains(e.Message, $"containers nest more than {PickleScanner.MaxNesting} deep");
    }

    [TestMethod]
    public void APlainDictOfPrimitivesStillReads()
    {
        // {'epoch': 300, 'arch': 'vit_small'}
        byte[] pickle = [0x80, 0x02, (byte)'}', (byte)'(', .. Unicode("epoch"), (byte)'M', 0x2C, 0x01, .. Unicode("arch"), .. Unicode("vit_small"), (byte)'u', (byte)'.'];
        string path = Archive("plain.pth", pickle);

        var root = PyTorchFile.Read(path);
        Assert.AreEqual(300, Convert.ToInt32(root["epoch"]));
        Assert.AreEqual("vit_small", root["arch"]);
    }

    private static byte[] Global(string module, string name) => [(byte)'c', .. Encoding.UTF8.GetBytes($"{module}\n{name}\n")];

    private static byte[] Unicode(string text)
    {
        byte[] utf8 = Encoding.UTF8.GetBytes(text);
        var op = new byte[5];
        op[0] = (byte)'X';
        BinaryPrimitives.WriteInt32LittleEndian(op.AsSpan(1), utf8.Length);
        return [.. op, .. utf8];
    }

    private static byte[] ShortUnicode(string text) => [0x8c, (byte)text.Length, .. Encoding.UTF8.GetBytes(text)];

    private static byte[] Int(int value)
    {
        var op = new byte[5];
        op[0] = (byte)'J';
        BinaryPrimitives.WriteInt32LittleEndian(op.AsSpan(1), value);
        return op;
    }

    /// <summary>A zip laid out as torch.save writes it: archive/data.pkl, archive/version, and the storages given.</summary>
    private static string Archive(string name, byte[] pickle, params (string Name, byte[] Bytes)[] storages)
    {
        string path = Path.Combine(TestData.NewFolder(), name);
        using var zip = ZipFile.Open(path, ZipArchiveMode.Create);
        foreach (var (entry, bytes) in new[] { ("archive/data.pkl", pickle), ("archive/version", "3\n"u8.ToArray()) }.Concat(storages))
        {
            using var stream = zip.CreateEntry(entry, CompressionLevel.NoCompression).Open();
            stream.Write(bytes);
        }
        return path;
    }
}
