using System.Collections;
using System.IO.Compression;
using MoCoV3.Checkpoints;
using MoCoV3.Models;
using static MoCoV3.Tests.Import.ImportTestFiles;

namespace MoCoV3.Tests.Import;

/// <summary>Bad files and checkpoints of another architecture are refused with the file's name and what is wrong; nothing is half-loaded.</summary>
[TestClass]
public sealed class ImportErrorTests
{
    private static string ValidTimmFile()
    {
        using var source = SourceBackbone(TestPresets.MicroVit, 51);
        return Flat(source, "head", "vit.pth");
    }

    [TestMethod]
    public void TruncatedFileIsRefusedByName()
    {
        string path = ValidTimmFile();
        var bytes = File.ReadAllBytes(path);
        File.WriteAllBytes(path, bytes[..(bytes.Length / 2)]);
        var e = Assert.ThrowsExactly<InvalidDataException>(() => CheckpointImporter.Load(path, null, TestPresets.MicroVit));
        StringAssert.StartsWith(e.Message, path + ": ");
        StringAssert.Contains(e.Message, "truncated or corrupt zip");
    }

    [TestMethod]
    public void GarbageBytesAreRefusedByName()
    {
        string path = TempFile("garbage.pth");
        File.WriteAllBytes(path, Enumerable.Range(0, 300).Select(i => (byte)(i * 7 + 1)).ToArray());
        var e = Assert.ThrowsExactly<InvalidDataException>(() => CheckpointImporter.Load(path, null, TestPresets.MicroVit));
        StringAssert.StartsWith(e.Message, path + ": not a PyTorch checkpoint");

        File.WriteAllBytes(path, []);
        e = Assert.ThrowsExactly<InvalidDataException>(() => CheckpointImporter.Load(path, null, null));
        StringAssert.StartsWith(e.Message, path + ": ");
    }

    [TestMethod]
    public void ZipWithoutPickleIsRefusedByName()
    {
        string path = TempFile("notes.pth");
        using (var zip = ZipFile.Open(path, ZipArchiveMode.Create))
        using (var writer = new StreamWriter(zip.CreateEntry("archive/readme.txt").Open()))
            writer.Write("no tensors here");
        var e = Assert.ThrowsExactly<InvalidDataException>(() => CheckpointImporter.Load(path, null, null));
        StringAssert.StartsWith(e.Message, path + ": ");
        StringAssert.Contains(e.Message, "no data.pkl");
        StringAssert.Contains(e.Message, "archive/readme.txt");
    }

    [TestMethod]
    public void MissingFileIsReportedByName()
    {
        string path = Path.Combine(Path.GetTempPath(), "mocov3-tests", "does-not-exist.pth");
        var e = Assert.ThrowsExactly<FileNotFoundException>(() => CheckpointImporter.Load(path, null, null));
        StringAssert.Contains(e.Message, path);
    }

    [TestMethod]
    public void WiderVitIsRefusedWithKeysAndShapes()
    {
        var wider = TestPresets.MicroVit.WithVit(vit => vit with { EmbedDim = 48, Heads = 3 }) with { Name = "wider" };
        using var source = SourceMoCo(wider, 52);
        string path = MMSelfSup(source);
        var e = Assert.ThrowsExactly<InvalidDataException>(() => CheckpointImporter.Load(path, null, TestPresets.MicroVit));
        StringAssert.StartsWith(e.Message, path + ": this MMSelfSup checkpoint does not fit preset 'micro-vit'");
        StringAssert.Contains(e.Message, "30 mis-shaped, 0 missing, 0 unexpected); nothing was loaded");
        StringAssert.Contains(e.Message, "(+20 more mis-shaped)");
        StringAssert.Contains(e.Message,
            "mis-shaped: blocks.0.attn.qkv.weight (checkpoint key backbone.layers.0.attn.qkv.weight): checkpoint [144,48], preset 'micro-vit' expects [96,32]");
        StringAssert.Contains(e.Message, "mis-shaped: pos_embed (checkpoint key backbone.pos_embed): checkpoint [1,17,48], preset 'micro-vit' expects [1,17,32]");
    }

    [TestMethod]
    public void MissingAndUnexpectedKeysAreListed()
    {
        var preset = TestPresets.MicroVit;
        using var source = SourceBackbone(preset, 53);
        var state = new Hashtable();
        foreach (var (key, value) in source.state_dict())
            if (key != "norm.weight") state["module.base_encoder." + key] = value;
        state["module.base_encoder.blocks.5.norm1.weight"] = source.state_dict()["norm.bias"];
        string path = Pickle("partial.pth.tar", new Hashtable { ["state_dict"] = state });
        var e = Assert.ThrowsExactly<InvalidDataException>(() => CheckpointImporter.Load(path, null, preset));
        StringAssert.Contains(e.Message, "missing: module.base_encoder.norm.weight [32]");
        StringAssert.Contains(e.Message, "unexpected: module.base_encoder.blocks.5.norm1.weight [32] (read as blocks.5.norm1.weight)");
        StringAssert.Contains(e.Message, "(29 of 30 backbone tensors found by name; 0 mis-shaped, 1 missing, 1 unexpected)");
    }

    [TestMethod]
    public void ResNetInAVitPresetIsRefused()
    {
        var state = new Hashtable
        {
            ["conv1.weight"] = TorchSharp.torch.zeros(64, 1, 3, 3),
            ["bn1.weight"] = TorchSharp.torch.ones(64),
            ["layer1.0.conv1.weight"] = TorchSharp.torch.zeros(64, 64, 3, 3),
        };
        string path = Pickle("resnet.pth", state);
        var e = Assert.ThrowsExactly<InvalidDataException>(() => CheckpointImporter.Load(path, null, TestPresets.MicroVit));
        StringAssert.Contains(e.Message, path);
        StringAssert.Contains(e.Message, "unexpected: conv1.weight [64,1,3,3]");
        StringAssert.Contains(e.Message, "missing: cls_token [1,1,32]");
    }

    [TestMethod]
    public void ClassifierOfTheWrongWidthIsRefused()
    {
        var preset = TestPresets.MicroVit;
        using var source = SourceBackbone(preset, 55);
        var state = new Hashtable();
        foreach (var (key, value) in source.state_dict()) state[key] = value;
        state["head.weight"] = TorchSharp.torch.zeros(10, 48);
        string path = Pickle("vit.pth", state);
        var e = Assert.ThrowsExactly<InvalidDataException>(() => CheckpointImporter.Load(path, CheckpointFormat.Timm, preset));
        StringAssert.Contains(e.Message, "mis-shaped: classifier head.weight: checkpoint [10,48], backbone gives 32 features");
    }

    [TestMethod]
    public void UnknownLayoutAsksForFrom()
    {
        string path = Pickle("odd.pth", new Hashtable { ["encoder.weight"] = TorchSharp.torch.zeros(3) });
        var e = Assert.ThrowsExactly<InvalidDataException>(() => CheckpointImporter.Load(path, null, null));
        StringAssert.Contains(e.Message, path);
        StringAssert.Contains(e.Message, "encoder.weight");
        StringAssert.Contains(e.Message, "--from");
    }

    [TestMethod]
    public void NonFiniteWeightsAreReported()
    {
        var preset = TestPresets.MicroVit;
        using var source = SourceBackbone(preset, 56);
        var state = new Hashtable();
        foreach (var (key, value) in source.state_dict()) state[key] = value;
        state["norm.weight"] = TorchSharp.torch.full(32, float.NaN);
        string path = Pickle("diverged.pth", state);
        using var imported = CheckpointImporter.Load(path, null, preset);
        Assert.IsTrue(imported.Report.Notes.Any(n => n.StartsWith("warning: 1 tensors hold NaN or infinity (norm.weight)", StringComparison.Ordinal)));
    }
}
