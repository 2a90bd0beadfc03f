using System.Collections;
using MoCoV3.Checkpoints;
using MoCoV3.Method;
using MoCoV3.Models;
using MoCoV3.Training;
using static MoCoV3.Tests.Import.ImportTestFiles;
using static TorchSharp.torch;

namespace MoCoV3.Tests.Import;

/// <summary>Conversions keep the backbone bit for bit, through every written layout and back.</summary>
[TestClass]
public sealed class CheckpointConvertTests
{
    private static string ToolkitCheckpoint(MoCo model, ModelPreset preset)
    {
        string path = TempFile(CheckpointFile.DefaultName);
        var plan = new RunPlan { Batch = 8, StepsPerEpoch = 1, TotalSteps = 1, PeakLr = 1e-3, WarmupEpochs = 0, Seed = 0 };
        CheckpointFile.Save(path, new CheckpointHeader { Preset = preset, Plan = plan, Step = 1, ElapsedSeconds = 0 }, model, null);
        return path;
    }

    /// <summary>Both encoders of the converted toolkit checkpoint hold exactly the source's backbone.</summary>
    private static void AssertBackbonesEqual(Backbone expected, string toolkitPath, ModelPreset preset)
    {
        using var model = new MoCo(preset, BackboneFactory.Create);
        CheckpointFile.Load(toolkitPath, model, null);
        var want = expected.state_dict();
        foreach (var encoder in new[] { model.BaseEncoder, model.MomentumEncoder })
        {
            var got = encoder.Backbone.state_dict();
            Assert.AreEqual(want.Count, got.Count);
            foreach (var (key, value) in want)
                Assert.IsTrue(value.allclose(got[key], 0, 0), $"{key} differs after the round trip");
        }
    }

    [TestMethod]
    [DataRow("timm", "vit_micro.pth")]
    [DataRow("official", "vit_micro.pth.tar")]
    public void ToolkitRoundTripKeepsTheBackbone(string via, string name)
    {
        var preset = TestPresets.MicroVit;
        using var source = SourceMoCo(preset, 61);
        string toolkit = ToolkitCheckpoint(source, preset);
        var format = Enum.Parse<CheckpointFormat>(via, ignoreCase: true);

        string middle = TempFile(name);
        var there = CheckpointConverter.Convert(toolkit, null, null, format, middle);
        Assert.AreEqual(CheckpointFormat.Toolkit, there.From);
        // timm: the backbone; official: the whole MoCo state (both encoders, projectors, predictor).
        Assert.AreEqual(format == CheckpointFormat.Official ? source.state_dict().Count : source.BaseEncoder.Backbone.state_dict().Count, there.TensorsWritten);

        string back = TempFile("back.ckpt");
        var result = CheckpointConverter.Convert(middle, null, preset, CheckpointFormat.Toolkit, back);
        Assert.AreEqual(format, result.From);
        Assert.AreEqual(preset.Name, CheckpointFile.ReadHeader(back).Preset.Name);
        AssertBackbonesEqual(source.BaseEncoder.Backbone, back, preset);
    }

    [TestMethod]
    public void ResNetRoundTripKeepsTheBackbone()
    {
        var preset = MicroResNet;
        using var source = SourceMoCo(preset, 62);
        string timm = TempFile("r.pth");
        CheckpointConverter.Convert(ToolkitCheckpoint(source, preset), null, null, CheckpointFormat.Timm, timm);
        string back = TempFile("back.ckpt");
        CheckpointConverter.Convert(timm, null, preset, CheckpointFormat.Toolkit, back);
        AssertBackbonesEqual(source.BaseEncoder.Backbone, back, preset);
    }

    [TestMethod]
    public void WrittenFilesHaveTheExpectedKeys()
    {
        var preset = TestPresets.MicroVit;
        using var source = SourceBackbone(preset, 63);
        string input = Flat(source, "head", "in.pth");

        string timm = TempFile("out.pth");
        CheckpointConverter.Convert(input, null, preset, CheckpointFormat.Timm, timm);
        var flat = PyTorchFile.Read(timm);
        Assert.IsTrue(flat.ContainsKey("blocks.1.mlp.fc2.weight"));
        Assert.IsTrue(flat.ContainsKey("head.weight"), "the classifier head is carried over to timm");
        Assert.AreEqual(source.state_dict().Count + 2, flat.Count);

        string official = TempFile("out.pth.tar");
        CheckpointConverter.Convert(input, null, preset, CheckpointFormat.Official, official);
        var root = PyTorchFile.Read(official);
        var state = (Hashtable)root["state_dict"]!;
        Assert.AreEqual("micro_vit", root["arch"]);
        Assert.IsTrue(state.Keys.Cast<string>().All(k => k.StartsWith("module.base_encoder.", StringComparison.Ordinal)));
        Assert.IsTrue(((Tensor)state["module.base_encoder.norm.weight"]!).allclose(source.state_dict()["norm.weight"], 0, 0));
        Assert.AreEqual(source.state_dict().Count, state.Count);
    }

    /// <summary>
    /// <c>convert --to official</c> of a toolkit checkpoint writes what moco-v3's <c>save_checkpoint</c> writes: every key of
    /// <c>MoCo_ViT</c>/<c>MoCo_ResNet</c> (both encoders with <c>head</c>/<c>fc</c> projectors, the predictor, DDP's
    /// <c>module.</c> prefix), <c>epoch</c> and <c>arch</c>; read back by name it restores every tensor of the source.
    /// </summary>
    [TestMethod]
    [DataRow(true)]
    [DataRow(false)]
    public void OfficialFromAToolkitCheckpointHoldsTheWholeMoCoState(bool vit)
    {
        var preset = vit ? TestPresets.MicroVit : MicroResNet;
        using var source = SourceMoCo(preset, 65);
        string toolkit = TempFile(CheckpointFile.DefaultName);
        var plan = new RunPlan { Batch = 8, StepsPerEpoch = 4, TotalSteps = 40, PeakLr = 1e-3, WarmupEpochs = 0, Seed = 0 };
        CheckpointFile.Save(toolkit, new CheckpointHeader { Preset = preset, Plan = plan, Step = 10, ElapsedSeconds = 0 }, source, null);
        string official = TempFile("whole.pth.tar");
        var result = CheckpointConverter.Convert(toolkit, null, null, CheckpointFormat.Official, official);
        Assert.IsTrue(result.Notes.Any(n => n.Contains("whole MoCo state") && n.Contains("epoch 2")), string.Join("\n", result.Notes));

        var root = PyTorchFile.Read(official);
        Assert.AreEqual(2L, Convert.ToInt64(root["epoch"]));   // 10 steps of 4 per epoch: 2 whole epochs
        var state = (Hashtable)root["state_dict"]!;
        var keys = state.Keys.Cast<string>().ToList();
        Assert.AreEqual(source.state_dict().Count, keys.Count);
        Assert.IsTrue(keys.All(k => k.StartsWith("module.", StringComparison.Ordinal)));
        string projector = vit ? "head" : "fc";
        foreach (var part in new[] { $"module.base_encoder.{projector}.0.weight", $"module.momentum_encoder.{projector}.0.weight", "module.predictor.0.weight" })
            Assert.IsTrue(keys.Contains(part), $"{part} missing from {string.Join(", ", keys.Take(8))}");
        Assert.IsFalse(keys.Any(k => k.Contains(".projector.") || k.Contains(".backbone.")), "our module names leaked into the official layout");

        // Read back by the official names alone (the strict --init loader: a missing or extra key is an error), every tensor
        // equals the source's, momentum encoder and predictor included.
        using var restored = new MoCo(preset, BackboneFactory.Create);
        InitialWeights.Load(official, restored, null);
        var want = source.state_dict();
        foreach (var (key, value) in restored.state_dict())
            Assert.IsTrue(value.allclose(want[key], 0, 0), $"{key} differs after the official round trip");
    }

    [TestMethod]
    public void MMSelfSupConvertsToToolkit()
    {
        var preset = TestPresets.MicroVit;
        using var source = SourceMoCo(preset, 64);
        string back = TempFile("from-mm.ckpt");
        var result = CheckpointConverter.Convert(MMSelfSup(source), CheckpointFormat.MMSelfSup, preset, CheckpointFormat.Toolkit, back);
        Assert.AreEqual(CheckpointFormat.MMSelfSup, result.From);
        AssertBackbonesEqual(source.BaseEncoder.Backbone, back, preset);
    }

    [TestMethod]
    public void UnwritableFormatsAndOverwritingTheInputAreRefused()
    {
        string input = TempFile("in.pth");
        Assert.ThrowsExactly<ArgumentException>(() => CheckpointConverter.Convert(input, null, null, CheckpointFormat.MMSelfSup, TempFile("out.pth")));
        Assert.ThrowsExactly<ArgumentException>(() => CheckpointConverter.Convert(input, null, null, CheckpointFormat.Timm, input));
    }
}
