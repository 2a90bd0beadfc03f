using System.Collections.Specialized;
using System.IO.Compression;
using System.IO.Hashing;
using MoCoV3.Checkpoints;
using MoCoV3.IO;
using MoCoV3.Method;
using MoCoV3.Tests.Import;
using static TorchSharp.torch;

namespace MoCoV3.Tests.Integrity;

/// <summary>
/// Zip entries are checked against their CRC-32 (issue 16, point 7): <see cref="ZipArchive"/> itself does not, so a
/// <c>.pth</c> with flipped bytes in a tensor used to import without a word.
/// </summary>
[TestClass]
public sealed class ZipIntegrityTests
{
    [TestMethod]
    public void ZipArchive_ReadsADamagedStoredEntry_ZipIntegrityRefusesIt()
    {
        string path = ImportTestFiles.TempFile("damaged.zip");
        byte[] content = new byte[4000];
        new Random(7).NextBytes(content);
        using (var archive = ZipFile.Open(path, ZipArchiveMode.Create))
        using (var stream = archive.CreateEntry("archive/data/0", CompressionLevel.NoCompression).Open())
            stream.Write(content);
        CorruptBytes.Flip(path, CorruptBytes.Find(File.ReadAllBytes(path), content.AsSpan(1000, 64)), 8);

        using (var archive = ZipFile.OpenRead(path))
        {
            var entry = archive.GetEntry("archive/data/0")!;
            using var read = new MemoryStream();
            using (var input = entry.Open()) input.CopyTo(read); // .NET's own read: no error
            Assert.AreEqual(4000, read.Length);
            Assert.AreEqual(Crc32.HashToUInt32(content), entry.Crc32, "the archive records the CRC of what was written");
            Assert.AreNotEqual(entry.Crc32, Crc32.HashToUInt32(read.ToArray()), "and the bytes read no longer match it");
        }
        var e = Assert.ThrowsExactly<InvalidDataException>(() => ZipIntegrity.VerifyFile(path));
        StringAssert.StartsWith(e.Message, path + ": zip entry archive/data/0 is corrupt: its CRC-32 is ");
    }

    [TestMethod]
    public void PyTorchWriter_RecordsTheCrc32OfEveryEntry()
    {
        string path = ImportTestFiles.TempFile("written.pth");
        using var a = arange(0, 1000, dtype: ScalarType.Float32);
        using var b = ones(7, 3, dtype: ScalarType.Float64);
        PyTorchFile.Write(path, new OrderedDictionary { ["a"] = a, ["nested"] = new OrderedDictionary { ["b"] = b }, ["epoch"] = 3 });
        using var archive = ZipFile.OpenRead(path);
        Assert.IsGreaterThanOrEqualTo(4, archive.Entries.Count, "data.pkl, version and two storages at least");
        foreach (var entry in archive.Entries)
        {
            using var input = entry.Open();
            using var bytes = new MemoryStream();
            input.CopyTo(bytes);
            Assert.AreEqual(Crc32.HashToUInt32(bytes.ToArray()), entry.Crc32, entry.FullName);
        }
        var storage = archive.Entries.Single(e => e.Length == 4000); // a: 1000 float32
        Assert.AreEqual(Crc32.HashToUInt32(a.data<float>().ToArray().SelectMany(BitConverter.GetBytes).ToArray()), storage.Crc32);
    }

    [TestMethod]
    public void FlippedBytesInATensorStorage_AreRefusedNamingTheFileAndTheEntry()
    {
        string path;
        byte[] weights;
        using (MoCo source = ImportTestFiles.SourceMoCo(TestPresets.MicroVit, 71))
        {
            path = Stored(ImportTestFiles.Official(source, vit: true));
            weights = source.BaseEncoder.Backbone.state_dict()["blocks.0.attn.qkv.weight"].data<float>().ToArray()
                .Take(16).SelectMany(BitConverter.GetBytes).ToArray();
        }
        using (var intact = CheckpointImporter.Load(path, null, TestPresets.MicroVit))
            Assert.IsGreaterThan(0, intact.Report.Loaded.Count, "the undamaged file imports");
        int at = CorruptBytes.Find(File.ReadAllBytes(path), weights);
        string entry;
        using (var archive = ZipFile.OpenRead(path))
            entry = archive.Entries.Single(e => e.FullName.Contains("/data/", StringComparison.Ordinal) && Contains(e, weights)).FullName;
        CorruptBytes.Flip(path, at + 8, 16);

        var e = Assert.ThrowsExactly<InvalidDataException>(() => CheckpointImporter.Load(path, null, TestPresets.MicroVit));
        StringAssert.StartsWith(e.Message, $"{path}: zip entry {entry} is corrupt: its CRC-32 is ");
        StringAssert.Contains(e.Message, "the archive records");
        e = Assert.ThrowsExactly<InvalidDataException>(() => PyTorchFile.Read(path));
        StringAssert.StartsWith(e.Message, $"{path}: zip entry {entry} is corrupt");
    }

    [TestMethod]
    public void AClobberedPickle_IsRefusedByItsCrcBeforeItIsParsed()
    {
        string path;
        using (var source = ImportTestFiles.SourceBackbone(TestPresets.MicroVit, 72))
            path = Stored(ImportTestFiles.Flat(source, "head", "clobbered.pth"));
        byte[] name = "blocks.0.norm1.weight"u8.ToArray();
        int at = CorruptBytes.Find(File.ReadAllBytes(path), name);
        // An 8-byte field overwritten in place: the pickle would still parse, with a wrong key.
        byte[] bytes = File.ReadAllBytes(path);
        bytes.AsSpan(at, 8).Fill((byte)'x');
        File.WriteAllBytes(path, bytes);
        var e = Assert.ThrowsExactly<InvalidDataException>(() => PyTorchFile.Read(path));
        StringAssert.Matches(e.Message, new System.Text.RegularExpressions.Regex("^" + System.Text.RegularExpressions.Regex.Escape(path) + @": zip entry [^ ]*data\.pkl is corrupt: its CRC-32 is [0-9a-f]{8}, the archive records [0-9a-f]{8}"));
    }

    /// <summary>
    /// The file re-packed with its entries stored, as <c>torch.save</c> writes them (PyBridge deflates them), so that
    /// flipped bytes land in the tensors' bytes themselves.
    /// </summary>
    private static string Stored(string path)
    {
        var entries = new List<(string Name, byte[] Bytes)>();
        using (var archive = ZipFile.OpenRead(path))
            foreach (var entry in archive.Entries)
            {
                using var input = entry.Open();
                using var bytes = new MemoryStream();
                input.CopyTo(bytes);
                entries.Add((entry.FullName, bytes.ToArray()));
            }
        File.Delete(path);
        using (var archive = ZipFile.Open(path, ZipArchiveMode.Create))
            foreach (var (name, bytes) in entries)
            {
                using var output = archive.CreateEntry(name, CompressionLevel.NoCompression).Open();
                output.Write(bytes);
            }
        return path;
    }

    private static bool Contains(ZipArchiveEntry entry, byte[] needle)
    {
        using var input = entry.Open();
        using var bytes = new MemoryStream();
        input.CopyTo(bytes);
        return bytes.ToArray().AsSpan().IndexOf(needle) >= 0;
    }
}
