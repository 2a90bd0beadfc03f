using MoCoV3.Checkpoints;
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

    /// <summary>Key shapes of a backbone as the importer sees them after renaming (our names).</summary>
    private static Dictionary<string, long[]> Shapes(ModelPreset preset)
    {
        using var backbone = BackboneFactory.Create(preset);
        return backbone.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.shape);
    }

    [TestMethod]
    public void MicroResNetIsDetectedAmongGivenPresets()
    {
        var presets = PresetCatalog.All().Append(TestPresets.MicroVit).Append(MicroResNet);
        Assert.AreEqual("micro-resnet", ArchitectureDetector.Detect(Shapes(MicroResNet), presets, "test").Name);
    }

    [TestMethod]
    [DataRow("vit-small")]
    [DataRow("resnet50")]
    [DataRow("vit-tiny-fmnist")]
    [DataRow("resnet18-fmnist")]
    public void ShippedPresetIsDetectedFromKeyShapes(string name)
    {
        var shapes = Shapes(PresetCatalog.Get(name));
        Assert.AreEqual(name, ArchitectureDetector.Detect(shapes, PresetCatalog.All(), "test").Name);
    }

    [TestMethod]
    public void VitSmallIsDetectedFromOfficialKeyShapes()
    {
        // pos_embed [1,197,384] + 12 blocks, as an official checkpoint names them.
        var layout = MoCoV3.Checkpoints.KeyLayout.For(MoCoV3.Checkpoints.CheckpointFormat.Official);
        var official = Shapes(PresetCatalog.Get("vit-small")).ToDictionary(kv => layout.FromBackbone(kv.Key), kv => kv.Value);
        CollectionAssert.AreEqual(new long[] { 1, 197, 384 }, official["module.base_encoder.pos_embed"]);
        var ours = official.ToDictionary(kv => layout.Map(kv.Key).Name, kv => kv.Value);
        Assert.AreEqual("vit-small", ArchitectureDetector.Detect(ours, PresetCatalog.All(), "test").Name);
    }

    [TestMethod]
    public void ShippedPresetIsDetectedFromATimmFile()
    {
        var preset = PresetCatalog.Get("vit-tiny-fmnist");
        using var source = SourceBackbone(preset, 44);
        string path = Flat(source, "head", "vit_tiny.pth");
        using var imported = CheckpointImporter.Load(path, null, null);
        Assert.AreEqual("vit-tiny-fmnist", imported.Preset.Name);
        Assert.AreEqual(0.0, FeatureDifference(source, imported.Backbone, preset));
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
