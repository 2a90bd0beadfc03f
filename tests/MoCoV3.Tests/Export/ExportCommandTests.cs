using MoCoV3.Checkpoints;
using MoCoV3.Inference;
using System.CommandLine;
using MoCoV3.Cli.Commands;
using MoCoV3.Export;
using MoCoV3.Method;
using MoCoV3.Models;
using MoCoV3.Training;
using static TorchSharp.torch;

namespace MoCoV3.Tests.Export;

/// <summary><c>mocov3 export</c>, run in-process.</summary>
[TestClass]
public sealed class ExportCommandTests
{
    private const int BadInput = 2; // CliErrors.BadInput (internal to the CLI)

    private static (int Code, string Out, string Err) Export(params string[] args)
    {
        var root = new RootCommand { ExportCommand.Create() };
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        var (oldOut, oldErr) = (Console.Out, Console.Error);
        Console.SetOut(stdout);
        Console.SetError(stderr);
        try
        {
            int code = root.Parse(["export", .. args]).Invoke();
            return (code, stdout.ToString(), stderr.ToString());
        }
        finally
        {
            Console.SetOut(oldOut);
            Console.SetError(oldErr);
        }
    }

    private static string MicroCheckpoint(string dir, ModelPreset? preset = null)
    {
        preset ??= TestPresets.MicroVit;
        manual_seed(21);
        using var moco = new MoCo(preset, BackboneFactory.Create);
        ExportTestModels.Perturb(moco.BaseEncoder.Backbone, preset);
        string path = Path.Combine(dir, "checkpoint.ckpt");
        var plan = new RunPlan { Batch = 8, StepsPerEpoch = 1, TotalSteps = 1, PeakLr = 1e-3, WarmupEpochs = 0, Seed = 0 };
        CheckpointFile.Save(path, new CheckpointHeader { Preset = preset, Plan = plan, Step = 1, ElapsedSeconds = 0 }, moco, null);
        return path;
    }

    [TestMethod]
    public void ExportCommand_VerifiesOnRealImages_WithData()
    {
        TestData.RequireFashionMnist();
        var preset = TestPresets.MicroVit.WithVit(vit => vit with { PatchSize = 7 }).WithInput(input => input with { ImageSize = 28 }) with { Name = "micro-28" };
        string dir = ExportTestModels.TempFolder();
        string checkpoint = MicroCheckpoint(dir, preset);
        string output = Path.Combine(dir, "micro28.onnx");
        var (code, stdout, stderr) = Export("--checkpoint", checkpoint, "--out", output, "--verify",
                                            "--data", "/usr/share/datasets/fashion-mnist", "--verify-batch", "5");
        Assert.AreEqual(0, code, stderr);
        StringAssert.Contains(stdout, "batch=5");
        StringAssert.Contains(stdout, "verify: passed");
    }

    [TestMethod]
    public void ExportCommand_TimmCheckpointWithHead_GivesLogits()
    {
        string dir = ExportTestModels.TempFolder();
        var preset = TestPresets.MicroVit;
        string presetPath = Path.Combine(dir, "micro.json");
        File.WriteAllText(presetPath, System.Text.Json.JsonSerializer.Serialize(preset, ModelPreset.Json));
        using var backbone = MoCoV3.Tests.Import.ImportTestFiles.SourceBackbone(preset, 7);
        string timm = MoCoV3.Tests.Import.ImportTestFiles.Flat(backbone, "head", "micro-timm.pth");
        string output = Path.Combine(dir, "classifier.onnx");

        var (code, stdout, stderr) = Export("--checkpoint", timm, "--arch", presetPath, "--head", "--out", output, "--verify");
        Assert.AreEqual(0, code, stderr);
        StringAssert.Contains(stdout, "verify: passed");
        var model = Onnx.ModelProto.Parser.ParseFrom(File.ReadAllBytes(output));
        CollectionAssert.AreEqual(new[] { "embedding", "logits" }, model.Graph.Output.Select(o => o.Name).ToArray());

        // A pretraining checkpoint has no classifier: --head is refused by name.
        (code, _, stderr) = Export("--checkpoint", MicroCheckpoint(dir), "--head", "--out", Path.Combine(dir, "x.onnx"));
        Assert.AreEqual(BadInput, code);
        StringAssert.Contains(stderr, "no linear classifier");
    }

    [TestMethod]
    public void ExportCommand_WritesAndVerifiesAToolkitCheckpoint()
    {
        string dir = ExportTestModels.TempFolder();
        string checkpoint = MicroCheckpoint(dir);
        string output = Path.Combine(dir, "micro.onnx");
        var (code, stdout, stderr) = Export("--checkpoint", checkpoint, "--out", output, "--verify", "--verify-batch", "3");
        Assert.AreEqual(0, code, stderr);
        StringAssert.Contains(stdout, "max_abs_diff=");
        StringAssert.Contains(stdout, "cosine_min=");
        StringAssert.Contains(stdout, "verify: passed");
        Assert.IsTrue(File.Exists(output));

        // The file holds the checkpoint's query backbone.
        using var moco = new MoCo(TestPresets.MicroVit, BackboneFactory.Create);
        CheckpointFile.Load(checkpoint, moco, null);
        Assert.IsTrue(OnnxVerifier.Verify(output, moco.BaseEncoder.Backbone, TestPresets.MicroVit).Passed);
    }

    [TestMethod]
    public void ExportCommand_Fp16AndOpset_AreHonoured()
    {
        string dir = ExportTestModels.TempFolder();
        string checkpoint = MicroCheckpoint(dir);
        string output = Path.Combine(dir, "micro16.onnx");
        var (code, stdout, stderr) = Export("--checkpoint", checkpoint, "--out", output, "--fp16", "--opset", "18", "--verify");
        Assert.AreEqual(0, code, stderr);
        StringAssert.Contains(stdout, "fp16");
        var model = Onnx.ModelProto.Parser.ParseFrom(File.ReadAllBytes(output));
        Assert.AreEqual(18L, model.OpsetImport.Single().Version);
    }

    [TestMethod]
    public void ExportCommand_QuantizeInt8_WritesAnInt8ModelAndVerifiesItByCosine()
    {
        string dir = ExportTestModels.TempFolder();
        string checkpoint = MicroCheckpoint(dir);
        string output = Path.Combine(dir, "micro-int8.onnx");
        var (code, stdout, stderr) = Export("--checkpoint", checkpoint, "--out", output, "--quantize", "int8", "--verify", "--verify-batch", "8");
        Assert.AreEqual(0, code, stderr);
        StringAssert.Contains(stdout, $"quantised: {4 * TestPresets.MicroVit.Vit.Depth} MatMuls int8");
        StringAssert.Contains(stdout, "int8-dynamic");
        StringAssert.Contains(stdout, "verify: passed");
        var model = Onnx.ModelProto.Parser.ParseFrom(File.ReadAllBytes(output));
        Assert.AreEqual("int8-dynamic", model.MetadataProps.Single(p => p.Key == OnnxMetadata.Precision).Value);

        // The verify line reports the real numbers: int8 moves values (max_abs_diff well above float32's 1e-4) but keeps the direction.
        string line = stdout.Split('\n').Single(l => l.StartsWith("max_abs_diff=", StringComparison.Ordinal));
        double cosine = double.Parse(line.Split("cosine_min=")[1].Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture);
        double maxAbs = double.Parse(line.Split("max_abs_diff=")[1].Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture);
        Assert.IsGreaterThanOrEqualTo(VerifyResult.Int8CosineMin, cosine, line);
        Assert.IsGreaterThan(1e-4, maxAbs, line);

        (code, _, stderr) = Export("--checkpoint", checkpoint, "--out", output, "--quantize", "int8", "--fp16");
        Assert.AreEqual(BadInput, code);
        StringAssert.Contains(stderr, "exclude each other");
    }

    [TestMethod]
    public void ExportCommand_BadInputs_FailWithOneLine()
    {
        string dir = ExportTestModels.TempFolder();
        var (code, _, stderr) = Export("--checkpoint", Path.Combine(dir, "missing.ckpt"), "--out", Path.Combine(dir, "m.onnx"));
        Assert.AreEqual(BadInput, code);
        StringAssert.Contains(stderr, "missing.ckpt");

        string checkpoint = MicroCheckpoint(dir);
        (code, _, stderr) = Export("--checkpoint", checkpoint, "--out", Path.Combine(dir, "m.onnx"), "--head");
        Assert.AreEqual(BadInput, code);
        StringAssert.Contains(stderr, "no linear classifier");

        (code, _, stderr) = Export("--checkpoint", checkpoint, "--out", Path.Combine(dir, "m.onnx"), "--opset", "12");
        Assert.AreEqual(BadInput, code);
        StringAssert.Contains(stderr, "opset 12");

        (code, _, stderr) = Export("--checkpoint", checkpoint, "--out", Path.Combine(dir, "m.onnx"), "--arch", "vit-tiny-fmnist");
        Assert.AreEqual(BadInput, code);
        StringAssert.Contains(stderr, "does not fit preset 'vit-tiny-fmnist'");
        StringAssert.Contains(stderr, "nothing was loaded");
    }
}
