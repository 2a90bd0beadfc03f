using MoCoV3.Checkpoints;
using System.Collections;
using MoCoV3.Method;
using MoCoV3.Models;
using MoCoV3.Training;
using TorchSharp.PyBridge;
using static TorchSharp.torch;

namespace MoCoV3.Tests.Training;

[TestClass]
public sealed class InitialWeightsTests
{
    private static string TempFile(string name)
    {
        return Path.Combine(TestData.NewFolder(), name);
    }

    /// <summary>Our state dict renamed to the official moco-v3 layout, nested under 'state_dict' as main_moco.py saves it.</summary>
    private static string WriteOfficialCheckpoint(MoCo model)
    {
        var state = new Hashtable();
        foreach (var (key, value) in model.state_dict())
        {
            string official = key
                .Replace("base_encoder.backbone.", "base_encoder.")
                .Replace("momentum_encoder.backbone.", "momentum_encoder.")
                .Replace("base_encoder.projector.", "base_encoder.head.")
                .Replace("momentum_encoder.projector.", "momentum_encoder.head.");
            state["module." + official] = value;
        }
        var root = new Hashtable { ["state_dict"] = state, ["epoch"] = 300, ["arch"] = "vit_small" };
        string path = TempFile("vit-300ep.pth.tar");
        PyTorchPickler.PickleStateDict(path, root);
        return path;
    }

    [TestMethod]
    public void OfficialCheckpointLoadsEveryTensor()
    {
        manual_seed(21);
        using var source = new MoCo(TestPresets.MicroVit, BackboneFactory.Create);
        string path = WriteOfficialCheckpoint(source);

        manual_seed(22);
        using var target = new MoCo(TestPresets.MicroVit, BackboneFactory.Create);
        var messages = new List<string>();
        InitialWeights.Load(path, target, messages.Add);

        var expected = source.state_dict();
        foreach (var (key, value) in target.state_dict())
            Assert.IsTrue(value.allclose(expected[key], 0, 0), $"{key} differs after loading");
        StringAssert.Contains(messages.Single(), "official");
    }

    [TestMethod]
    public void OfficialSafeTensorsLoadsEveryTensor()
    {
        manual_seed(25);
        using var source = new MoCo(TestPresets.MicroVit, BackboneFactory.Create);
        string path = MoCoV3.Tests.Import.SafeTensorsImportTests.AsSafeTensors(WriteOfficialCheckpoint(source), "vit-300ep.safetensors");

        manual_seed(26);
        using var target = new MoCo(TestPresets.MicroVit, BackboneFactory.Create);
        var messages = new List<string>();
        InitialWeights.Load(path, target, messages.Add);
        var expected = source.state_dict();
        foreach (var (key, value) in target.state_dict())
            Assert.IsTrue(value.allclose(expected[key], 0, 0), $"{key} differs after loading");
        StringAssert.Contains(messages.Single(), "official");
    }

    [TestMethod]
    public void TimmSafeTensorsInitialisesBothBackbonesAndNothingElse()
    {
        var preset = TestPresets.MicroVit;
        using var backbone = MoCoV3.Tests.Import.ImportTestFiles.SourceBackbone(preset, 27);
        string path = MoCoV3.Tests.Import.SafeTensorsImportTests.AsSafeTensors(
            MoCoV3.Tests.Import.ImportTestFiles.Flat(backbone, "head", "timm.pth"), "timm.safetensors");

        manual_seed(28);
        using var target = new MoCo(preset, BackboneFactory.Create);
        var projectorBefore = target.state_dict()["base_encoder.projector.0.weight"].clone();
        var messages = new List<string>();
        InitialWeights.Load(path, target, messages.Add);
        foreach (var encoder in new[] { target.BaseEncoder, target.MomentumEncoder })
        {
            var got = encoder.Backbone.state_dict();
            foreach (var (key, value) in backbone.state_dict())
                Assert.IsTrue(value.allclose(got[key], 0, 0), $"{key} differs after loading");
        }
        Assert.IsTrue(target.state_dict()["base_encoder.projector.0.weight"].allclose(projectorBefore, 0, 0), "the projector keeps its initialisation");
        StringAssert.Contains(messages.Single(), "from Timm checkpoint");
        StringAssert.Contains(messages.Single(), "2 others skipped");
    }

    [TestMethod]
    public void ABackboneTensorWithNaNIsReportedOnceThoughBothEncodersGetIt()
    {
        var preset = TestPresets.MicroVit;
        using var backbone = MoCoV3.Tests.Import.ImportTestFiles.SourceBackbone(preset, 29);
        using (no_grad()) backbone.state_dict()["norm.weight"][0] = float.NaN;
        string path = MoCoV3.Tests.Import.ImportTestFiles.Flat(backbone, "head", "diverged.pth");

        using var target = new MoCo(preset, BackboneFactory.Create);
        var messages = new List<string>();
        InitialWeights.Load(path, target, messages.Add);
        Assert.AreEqual("warning: 1 tensors hold NaN or infinity (norm.weight): the run that wrote this checkpoint may have diverged", messages[0]);
        Assert.IsTrue(float.IsNaN(target.MomentumEncoder.Backbone.state_dict()["norm.weight"][0].item<float>()), "loaded as it is");
    }

    [TestMethod]
    public void ABackboneOfAnotherShapeIsRefusedBeforeAnythingIsLoaded()
    {
        var preset = TestPresets.MicroVit;
        using var backbone = MoCoV3.Tests.Import.ImportTestFiles.SourceBackbone(preset.WithVit(vit => vit with { Depth = 3 }), 29);
        string path = MoCoV3.Tests.Import.SafeTensorsImportTests.AsSafeTensors(
            MoCoV3.Tests.Import.ImportTestFiles.Flat(backbone, "head", "deep.pth"), "deep.safetensors");
        using var target = new MoCo(preset, BackboneFactory.Create);
        var before = target.state_dict()["base_encoder.backbone.norm.weight"].clone();
        var e = Assert.ThrowsExactly<InvalidDataException>(() => InitialWeights.Load(path, target, null));
        StringAssert.StartsWith(e.Message, path + ": does not fit this model");
        StringAssert.Contains(e.Message, "unexpected: ");
        StringAssert.Contains(e.Message, "base_encoder.backbone.blocks.2.norm1.weight");
        Assert.IsTrue(target.state_dict()["base_encoder.backbone.norm.weight"].allclose(before, 0, 0), "nothing may be loaded");
    }

    [TestMethod]
    public void WrongArchitectureIsRefusedWithShapes()
    {
        using var source = new MoCo(TestPresets.MicroVit, BackboneFactory.Create);
        string path = WriteOfficialCheckpoint(source);
        using var wider = new MoCo(TestPresets.MicroVit.WithVit(vit => vit with { EmbedDim = 48, Heads = 3 }), BackboneFactory.Create);
        var before = wider.state_dict()["base_encoder.backbone.norm.weight"].clone();
        var e = Assert.ThrowsExactly<InvalidDataException>(() => InitialWeights.Load(path, wider, null));
        StringAssert.Contains(e.Message, path);
        StringAssert.Contains(e.Message, "mis-shaped: base_encoder.backbone.blocks.0.attn.qkv.weight (checkpoint key module.base_encoder.blocks.0.attn.qkv.weight): checkpoint [96,32], model expects [144,48]");
        Assert.IsTrue(wider.state_dict()["base_encoder.backbone.norm.weight"].allclose(before, 0, 0), "nothing may be loaded");
    }

    [TestMethod]
    public void GarbageFileIsRefusedByName()
    {
        string path = TempFile("garbage.pth.tar");
        File.WriteAllBytes(path, [1, 2, 3, 4, 5, 6, 7, 8, 9]);
        using var model = new MoCo(TestPresets.MicroVit, BackboneFactory.Create);
        var e = Assert.ThrowsExactly<InvalidDataException>(() => InitialWeights.Load(path, model, null));
        StringAssert.Contains(e.Message, path);

        File.WriteAllBytes(path, "PK\u0003\u0004 truncated zip"u8.ToArray());
        e = Assert.ThrowsExactly<InvalidDataException>(() => InitialWeights.Load(path, model, null));
        StringAssert.Contains(e.Message, "cannot read PyTorch checkpoint");
    }

    [TestMethod]
    public void ToolkitCheckpointInitialisesTheSameWeights()
    {
        manual_seed(23);
        using var source = new MoCo(TestPresets.MicroVit, BackboneFactory.Create);
        string path = TempFile(CheckpointFile.DefaultName);
        var plan = new RunPlan { Batch = 8, StepsPerEpoch = 1, TotalSteps = 1, PeakLr = 1e-3, WarmupEpochs = 0, Seed = 0 };
        CheckpointFile.Save(path, new CheckpointHeader { Preset = TestPresets.MicroVit, Plan = plan, Step = 1, ElapsedSeconds = 0 }, source, null);

        manual_seed(24);
        using var target = new MoCo(TestPresets.MicroVit, BackboneFactory.Create);
        InitialWeights.Load(path, target, null);
        var expected = source.state_dict();
        foreach (var (key, value) in target.state_dict())
            Assert.IsTrue(value.allclose(expected[key], 0, 0), $"{key} differs after loading");
    }

    [TestMethod]
    public void OfficialKeysMapToOurs()
    {
        Assert.AreEqual("base_encoder.backbone.blocks.3.attn.qkv.weight", InitialWeights.MapOfficialKey("module.base_encoder.blocks.3.attn.qkv.weight"));
        Assert.AreEqual("base_encoder.projector.6.weight", InitialWeights.MapOfficialKey("module.base_encoder.head.6.weight"));
        Assert.AreEqual("momentum_encoder.projector.1.running_var", InitialWeights.MapOfficialKey("module.momentum_encoder.fc.1.running_var"));
        Assert.AreEqual("predictor.0.weight", InitialWeights.MapOfficialKey("module.predictor.0.weight"));
        Assert.IsNull(InitialWeights.MapOfficialKey("module.queue"));
    }
}
