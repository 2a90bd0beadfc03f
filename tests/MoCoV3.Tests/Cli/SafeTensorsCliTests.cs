using MoCoV3.Checkpoints;
using MoCoV3.Inference;
using MoCoV3.Method;
using MoCoV3.Models;
using MoCoV3.Tests.Export;
using MoCoV3.Training;
using static MoCoV3.Tests.Cli.CliTests;
using static TorchSharp.torch;

namespace MoCoV3.Tests.Cli;

/// <summary><c>mocov3 convert --to safetensors</c> then <c>mocov3 export</c> of the result, as a user runs them.</summary>
[TestClass]
public sealed class SafeTensorsCliTests
{
    [TestMethod]
    public void ConvertToSafeTensorsThenExportGivesTheOriginalEmbeddings()
    {
        string dir = TestData.NewFolder();
        var preset = TestPresets.MicroVit;
        string checkpoint = Path.Combine(dir, "checkpoint.ckpt");
        manual_seed(41);
        using (var moco = new MoCo(preset, BackboneFactory.Create))
        {
            ExportTestModels.Perturb(moco.BaseEncoder.Backbone, preset);
            var plan = new RunPlan { Batch = 8, StepsPerEpoch = 1, TotalSteps = 1, PeakLr = 1e-3, WarmupEpochs = 0, Seed = 0 };
            CheckpointFile.Save(checkpoint, new CheckpointHeader { Preset = preset, Plan = plan, Step = 1, ElapsedSeconds = 0 }, moco, null);
        }
        string hf = Path.Combine(dir, "hf");
        var (code, output, error) = Mocov3("convert", "--checkpoint", checkpoint, "--to", "safetensors", "--out", hf);
        Assert.AreEqual(0, code, error);
        string weights = Path.Combine(hf, "model.safetensors");
        StringAssert.Contains(output, $"wrote {weights}: safetensors file (Timm names) of preset 'micro-vit'");
        StringAssert.Contains(output, $"wrote {Path.Combine(hf, "config.json")}: timm config");

        // No --arch: micro-vit is not a shipped preset; it comes from the file's metadata.
        string fromSafeTensors = Path.Combine(dir, "st.onnx"), fromCheckpoint = Path.Combine(dir, "ck.onnx");
        (code, output, error) = Mocov3("export", "--checkpoint", weights, "--out", fromSafeTensors, "--verify");
        Assert.AreEqual(0, code, error);
        StringAssert.Contains(output, "vit 'micro-vit'", "the preset of the file's metadata");
        StringAssert.Contains(output, "verify: passed");
        (code, _, error) = Mocov3("export", "--checkpoint", checkpoint, "--out", fromCheckpoint);
        Assert.AreEqual(0, code, error);

        manual_seed(6);
        float[] pixels = rand(2, preset.Input.Channels, preset.Input.ImageSize, preset.Input.ImageSize).data<float>().ToArray();
        using var a = new OnnxModelRunner(fromCheckpoint);
        using var b = new OnnxModelRunner(fromSafeTensors);
        float[] ea = a.Embed(pixels, 2), eb = b.Embed(pixels, 2);
        Assert.AreEqual(2 * preset.Vit.EmbedDim, ea.Length);
        Assert.IsTrue(ea.Zip(eb).Max(p => Math.Abs(p.First - p.Second)) <= 1e-5, "the two exports disagree");

        // A damaged header: exit code 2 and the file named.
        byte[] bytes = File.ReadAllBytes(weights);
        bytes[9] = (byte)'[';
        string broken = Path.Combine(dir, "broken.safetensors");
        File.WriteAllBytes(broken, bytes);
        (code, _, error) = Mocov3("export", "--checkpoint", broken, "--out", Path.Combine(dir, "x.onnx"));
        Assert.AreEqual(2, code);
        StringAssert.StartsWith(error, $"error: {broken}: corrupt safetensors header");
        Assert.IsFalse(File.Exists(Path.Combine(dir, "x.onnx")));
    }
}
