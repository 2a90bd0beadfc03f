using MoCoV3.Export.Checkpoints;
using MoCoV3.Models;
using static MoCoV3.Tests.Import.ImportTestFiles;

namespace MoCoV3.Tests.Import;

/// <summary>With no --arch, the importer picks the preset whose shapes the checkpoint has, or refuses and says what it found.</summary>
[TestClass]
public sealed class ImportArchitectureTests
{
    [TestMethod]
    public void MicroVitIsDetectedAmongGivenPresets()
    {
        using var source = SourceBackbone(TestPresets.MicroVit, 41);
        string path = Flat(source, "head", "micro.pth");
        var presets = PresetCatalog.All().Append(TestPresets.MicroVit).Append(MicroResNet);
        using var imported = CheckpointImporter.Load(path, null, null, presets);
        Assert.AreEqual("micro-vit", imported.Preset.Name);
        Assert.AreEqual(0.0, FeatureDifference(source, imported.Backbone, TestPresets.MicroVit));
    }

    [TestMethod]
    public void MicroResNetIsDetectedAmongGivenPresets()
    {
        using var source = SourceBackbone(MicroResNet, 42);
        string path = Flat(source, "fc", "micro.pth");
        using var imported = CheckpointImporter.Load(path, null, null, PresetCatalog.All().Append(TestPresets.MicroVit).Append(MicroResNet));
        Assert.AreEqual("micro-resnet", imported.Preset.Name);
    }

    [TestMethod]
    public void VitSmallIsDetectedFromOfficialKeyShapes()
    {
        var preset = PresetCatalog.Get("vit-small");
        using var source = SourceMoCo(preset with { HiddenDim = 32, OutDim = 16 }, 43);
        string path = Official(source, vit: true);
        using var imported = CheckpointImporter.Load(path, null, null);
        Assert.AreEqual("vit-small", imported.Preset.Name);
        Assert.AreEqual(0.0, FeatureDifference(source.BaseEncoder.Backbone, imported.Backbone, preset, batch: 1));
    }

    [TestMethod]
    public void ResNet50IsDetectedFromTorchvisionKeyShapes()
    {
        var preset = PresetCatalog.Get("resnet50");
        using var source = SourceBackbone(preset, 44);
        string path = Flat(source, "fc", "resnet50.pth");
        using var imported = CheckpointImporter.Load(path, null, null);
        Assert.AreEqual("resnet50", imported.Preset.Name);
        CollectionAssert.AreEqual(new long[] { 10, 2048 }, imported.Head!.Weight.shape);
        var expected = source.state_dict();
        foreach (var (key, value) in imported.Backbone.state_dict())
            Assert.IsTrue(value.allclose(expected[key], 0, 0), $"{key} differs");
    }

    [TestMethod]
    public void UnknownArchitectureIsRefusedWithWhatWasFound()
    {
        using var source = SourceBackbone(TestPresets.MicroVit, 45);
        string path = Flat(source, "head", "micro.pth");
        var e = Assert.ThrowsExactly<InvalidDataException>(() => CheckpointImporter.Load(path, null, null));
        StringAssert.Contains(e.Message, path);
        StringAssert.Contains(e.Message, "embed_dim 32, depth 2, patch 4, 1 channel(s), 17 tokens (16 px)");
        StringAssert.Contains(e.Message, "vit-small (ViT 384d x12, patch 16, 224 px, 3 ch)");
        StringAssert.Contains(e.Message, "--arch");
    }
}
