using System.Diagnostics;

namespace MoCoV3.Tests.Cli;

/// <summary>Runs the real <c>mocov3</c> program (built beside the tests) as a user would.</summary>
[TestClass]
public sealed class CliTests
{
    internal static (int Code, string Out, string Err) Mocov3(params string[] args)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "mocov3.dll"));
        foreach (var a in args) start.ArgumentList.Add(a);
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(TimeSpan.FromMinutes(3))) { process.Kill(true); Assert.Fail("mocov3 hung"); }
        return (process.ExitCode, stdout.Result, stderr.Result);
    }

    [TestMethod]
    public void PresetsListsEveryPreset()
    {
        var (code, output, _) = Mocov3("presets");
        Assert.AreEqual(0, code);
        foreach (var name in new[] { "vit-tiny-fmnist", "vit-small", "vit-base", "vit-large", "resnet50", "resnet18-fmnist" })
            StringAssert.Contains(output, name);
    }

    [TestMethod]
    public void PretrainWithAMissingDataFolderFailsWithItsName()
    {
        string outDir = TestData.NewFolder();
        var (code, _, error) = Mocov3("pretrain", "--preset", "vit-tiny-fmnist", "--data", "/nonexistent/data", "--out", outDir);
        Assert.AreEqual(2, code);
        StringAssert.StartsWith(error, "error: ");
        StringAssert.Contains(error, "/nonexistent/data");
    }

    [TestMethod]
    public void PretrainRunsAndResumesFromTheCommandLine()
    {
        TestData.RequireFashionMnist();
        string outDir = TestData.NewFolder();
        string preset = Path.Combine(outDir, "micro.json");
        File.WriteAllText(preset, """
            { "name": "micro", "arch": "vit", "image_size": 28, "channels": 1, "patch_size": 7, "embed_dim": 32, "depth": 1,
              "heads": 2, "hidden_dim": 64, "out_dim": 32, "batch": 32, "epochs": 1, "warmup_epochs": 0.1, "base_lr": 1e-3,
              "mean": [0.286], "std": [0.353] }
            """);
        var (code, output, error) = Mocov3("pretrain", "--preset", preset, "--limit", "256", "--max-steps", "4", "--out", outDir, "--log-every", "2");
        Assert.AreEqual(0, code, error);
        StringAssert.Contains(output, "step 4/4");
        Assert.IsTrue(File.Exists(Path.Combine(outDir, "checkpoint.ckpt")));
        Assert.IsTrue(Directory.EnumerateFiles(Path.Combine(outDir, "tb")).Any(), "no TensorBoard events");

        (code, output, error) = Mocov3("pretrain", "--preset", preset, "--limit", "256", "--max-steps", "4", "--out", outDir, "--resume", "auto");
        Assert.AreEqual(0, code, error);
        StringAssert.Contains(output, "resumed from");
        StringAssert.Contains(output, "done: 4 steps");

        // The pretrained encoder goes to ONNX, is verified in ONNX Runtime, and can be benchmarked from the file.
        string onnx = Path.Combine(outDir, "encoder.onnx");
        (code, output, error) = Mocov3("export", "--checkpoint", Path.Combine(outDir, "checkpoint.ckpt"), "--out", onnx, "--verify");
        Assert.AreEqual(0, code, error);
        StringAssert.Contains(output, "verify: passed");
        StringAssert.Contains(output, "-> embedding [N,32]");
        // --embedding picks the features at export time; one the model cannot give is refused by name, writing nothing.
        string wide = Path.Combine(outDir, "wide.onnx");
        (code, output, error) = Mocov3("export", "--checkpoint", Path.Combine(outDir, "checkpoint.ckpt"), "--out", wide, "--verify", "--embedding", "cls+mean");
        Assert.AreEqual(0, code, error);
        StringAssert.Contains(output, "-> embedding [N,64]");
        StringAssert.Contains(output, "verify: passed");
        string deep = Path.Combine(outDir, "deep.onnx");
        (code, _, error) = Mocov3("export", "--checkpoint", Path.Combine(outDir, "checkpoint.ckpt"), "--out", deep, "--embedding", "cls@last2");
        Assert.AreEqual(2, code);
        StringAssert.Contains(error, "--embedding: preset 'micro': embedding 'cls@last2' reads 2 blocks, but depth is 1");
        Assert.IsFalse(File.Exists(deep));
        (code, output, error) = Mocov3("bench", "--onnx", onnx, "--batch", "4", "--steps", "1", "--quantize", "int8");
        Assert.AreEqual(0, code, error);
        StringAssert.Contains(output, "micro at 28px, batch 4 x 1 timed");
        foreach (var row in new[] { "ORT fp32, default options", "ORT fp32, tuned options", "ORT int8-dynamic, tuned", "TorchSharp eager" })
            StringAssert.Contains(output, row);

        (code, _, error) = Mocov3("bench");
        Assert.AreEqual(2, code);
        StringAssert.Contains(error, "--preset");
    }
}
