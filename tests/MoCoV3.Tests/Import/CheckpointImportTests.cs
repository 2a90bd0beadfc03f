using MoCoV3.Checkpoints;
using MoCoV3.Models;
using static MoCoV3.Tests.Import.ImportTestFiles;

namespace MoCoV3.Tests.Import;

/// <summary>Each external layout, written as the real files are, imports into a backbone that gives the source's features exactly.</summary>
[TestClass]
public sealed class CheckpointImportTests
{
    private static ModelPreset Preset(string arch) => arch == "vit" ? TestPresets.MicroVit : MicroResNet;

    [TestMethod]
    [DataRow("vit")]
    [DataRow("resnet")]
    public void OfficialCheckpointImportsTheBaseEncoder(string arch)
    {
        var preset = Preset(arch);
        using var source = SourceMoCo(preset, 31);
        string path = Official(source, preset.IsVit);

        using var imported = CheckpointImporter.Load(path, format: null, preset);
        Assert.AreEqual(CheckpointFormat.Official, imported.Format);
        Assert.AreEqual(0.0, FeatureDifference(source.BaseEncoder.Backbone, imported.Backbone, preset));
        Assert.IsNull(imported.Head);
        Assert.AreEqual("state_dict", imported.Report.Wrapper);
        Assert.AreEqual(source.BaseEncoder.Backbone.state_dict().Count, imported.Report.Loaded.Count);
        var parts = imported.Report.Skipped.Select(s => s.Part).ToHashSet();
        CollectionAssert.AreEquivalent(new[] { CheckpointPart.Projector, CheckpointPart.MomentumEncoder, CheckpointPart.Predictor }, parts.ToArray());
        Assert.IsTrue(imported.Report.Skipped.Any(s => s.Key == (preset.IsVit ? "module.base_encoder.head.0.weight" : "module.base_encoder.fc.0.weight")));
    }

    [TestMethod]
    public void MMSelfSupCheckpointImportsTheBackbone()
    {
        // MMSelfSup's ResNet names are torchvision's, which the torchvision and official ResNet tests cover.
        var preset = TestPresets.MicroVit;
        using var source = SourceMoCo(preset, 32);
        string path = MMSelfSup(source);

        using var imported = CheckpointImporter.Load(path, format: null, preset);
        Assert.AreEqual(CheckpointFormat.MMSelfSup, imported.Format);
        Assert.AreEqual(0.0, FeatureDifference(source.BaseEncoder.Backbone, imported.Backbone, preset));
        var skipped = imported.Report.Skipped.ToDictionary(s => s.Key, s => s.Part);
        Assert.AreEqual(CheckpointPart.Projector, skipped["neck.layer0.weight"]);
        Assert.AreEqual(CheckpointPart.Predictor, skipped["head.predictor.layer0.weight"]);
        Assert.AreEqual(CheckpointPart.MomentumEncoder, skipped["momentum_encoder.steps"]);
        Assert.AreEqual(CheckpointPart.MomentumEncoder, skipped["momentum_encoder.module.0.layers.1.ffn.layers.0.0.weight"]);
    }

    [TestMethod]
    public void TimmCheckpointImportsWithItsClassifierHead()
    {
        var preset = TestPresets.MicroVit;
        using var source = SourceBackbone(preset, 33);
        string path = Flat(source, "head", "vit_micro.pth");

        using var imported = CheckpointImporter.Load(path, format: null, preset);
        Assert.AreEqual(CheckpointFormat.Timm, imported.Format);
        Assert.AreEqual(0.0, FeatureDifference(source, imported.Backbone, preset));
        Assert.IsNotNull(imported.Head);
        CollectionAssert.AreEqual(new long[] { 10, preset.Vit.EmbedDim }, imported.Head.Weight.shape);
        CollectionAssert.AreEqual(new long[] { 10 }, imported.Head!.Bias!.shape);
        Assert.AreEqual(0, imported.Report.Skipped.Count);
        Assert.AreEqual("", imported.Report.Wrapper);
        Assert.IsTrue(imported.Report.Lines().Any(l => l.Contains("classifier head head.weight [10,32]: 10 classes")));
        Assert.IsTrue(imported.Report.Notes.Any(n => n.Contains("attention heads: 2")));
    }

    [TestMethod]
    public void TorchvisionCheckpointImportsWithItsClassifierHead()
    {
        var preset = MicroResNet;
        using var source = SourceBackbone(preset, 34);
        string path = Flat(source, "fc", "resnet_micro.pth");

        using var imported = CheckpointImporter.Load(path, format: null, preset);
        Assert.AreEqual(CheckpointFormat.Torchvision, imported.Format);
        Assert.AreEqual(0.0, FeatureDifference(source, imported.Backbone, preset));
        CollectionAssert.AreEqual(new long[] { 10, 512 }, imported.Head!.Weight.shape);
        // BatchNorm running statistics are buffers: they must come across too.
        var expected = source.state_dict();
        foreach (var (key, value) in imported.Backbone.state_dict())
            Assert.IsTrue(value.allclose(expected[key], 0, 0), $"{key} differs");
    }

    [TestMethod]
    public void ToolkitCheckpointImportsTheQueryBackbone()
    {
        using var source = SourceMoCo(TestPresets.MicroVit, 35);
        string path = TempFile("checkpoint.ckpt");
        var plan = new MoCoV3.Method.RunPlan { Batch = 8, StepsPerEpoch = 1, TotalSteps = 1, PeakLr = 1e-3, WarmupEpochs = 0, Seed = 0 };
        MoCoV3.Checkpoints.CheckpointFile.Save(path, new MoCoV3.Checkpoints.CheckpointHeader { Preset = TestPresets.MicroVit, Plan = plan, Step = 7, ElapsedSeconds = 0 }, source, null);

        using var imported = CheckpointImporter.Load(path, format: null, arch: null);
        Assert.AreEqual(CheckpointFormat.Toolkit, imported.Format);
        Assert.AreEqual("micro-vit", imported.Preset.Name);
        Assert.AreEqual(0.0, FeatureDifference(source.BaseEncoder.Backbone, imported.Backbone, TestPresets.MicroVit));
    }

    [TestMethod]
    public void ExplicitFormatOverridesDetection()
    {
        var preset = TestPresets.MicroVit;
        using var source = SourceBackbone(preset, 36);
        string path = Flat(source, "head", "vit_micro.pth");
        using var imported = CheckpointImporter.Load(path, CheckpointFormat.Timm, preset);
        Assert.AreEqual(0.0, FeatureDifference(source, imported.Backbone, preset));

        var e = Assert.ThrowsExactly<InvalidDataException>(() => CheckpointImporter.Load(path, CheckpointFormat.Toolkit, preset));
        StringAssert.Contains(e.Message, path);
    }
}
