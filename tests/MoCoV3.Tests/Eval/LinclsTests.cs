using MoCoV3.Eval.Classification;
using MoCoV3.Eval.LinearEval;
using MoCoV3.Checkpoints;
using MoCoV3.Models;
using static TorchSharp.torch;

namespace MoCoV3.Tests.Eval;

[TestClass]
public sealed class LinclsTests
{
    public TestContext TestContext { get; set; } = null!;

    /// <summary>The quickstart preset's linear-eval base lr, chosen by the sweep in models/vit-tiny-fmnist-quick.md.</summary>
    private const double QuickLinclsBaseLr = 0.03;

    /// <summary>Whether two imports hold exactly the same backbone tensors (parameters and buffers).</summary>
    private static List<string> Differences(ImportedBackbone a, ImportedBackbone b)
    {
        var right = b.Backbone.state_dict();
        return a.Backbone.state_dict().Where(kv => !(kv.Value.shape.SequenceEqual(right[kv.Key].shape) && kv.Value.eq(right[kv.Key]).all().item<bool>())).Select(kv => kv.Key).ToList();
    }

    [TestMethod]
    public void LinclsLeavesTheViTBackboneUnchangedAndBeatsChance()
    {
        TestData.RequireFashionMnist();
        string dir = TestData.NewFolder("lincls");
        var preset = EvalTestModels.MicroVit28;
        string pretrained = EvalTestModels.ToolkitCheckpoint(preset, dir, seed: 3);
        var options = new LinclsOptions
        {
            Weights = new() { Checkpoint = pretrained },
            OutputDir = Path.Combine(dir, "run"),
            Epochs = 3,
            Batch = 64,
            Seed = 1,
            Data = new() { Limit = 2048, TestLimit = 500 },
            Compute = new() { Threads = 1 },
        };
        var epochs = new List<LinclsEpoch>();
        var evaluator = new LinearEvaluator();
        evaluator.EpochDone += epochs.Add;
        var result = evaluator.Run(options);
        foreach (var e in epochs) TestContext.WriteLine($"epoch {e.Epoch}: loss {e.Loss:F4} lr {e.Lr:G4} top1 {e.Top1:F2} top5 {e.Top5:F2}");

        Assert.AreEqual(3, result.History.Count);
        // lr = 3 × 64/256 = 0.75, cosine per epoch: 0.75, 0.75·(1 + cos(π/3))/2, 0.75·(1 + cos(2π/3))/2.
        Assert.AreEqual(0.75, epochs[0].Lr, 1e-12);
        Assert.AreEqual(0.5625, epochs[1].Lr, 1e-12);
        Assert.AreEqual(0.1875, epochs[2].Lr, 1e-12);
        Assert.AreEqual(500, result.TestCount);
        Assert.IsTrue(result.Top1 > 30, $"top1 {result.Top1} is near chance (10)");
        Assert.IsTrue(epochs[^1].Loss < epochs[0].Loss, "the head did not learn");
        Assert.AreEqual(3, CsvLog.ReadColumn(Path.Combine(options.OutputDir, "metrics.csv"), "top1").Count);

        // The saved backbone is bit-for-bit the pretrained one; the head is new, with 10 classes.
        var arch = PresetCatalog.Load(Path.Combine(options.OutputDir, ClassifierCheckpoint.PresetName));
        using var before = CheckpointImporter.Load(pretrained, null, null);
        using var after = CheckpointImporter.Load(result.Checkpoint, null, arch);
        Assert.AreEqual(0, Differences(before, after).Count, string.Join(", ", Differences(before, after)));
        Assert.IsNotNull(after.Head);
        Assert.AreEqual(10, after.Head.Classes);
        Assert.IsNull(before.Head);
    }

    /// <summary>
    /// The quickstart preset's lincls.base_lr is used when the checkpoint records it; a checkpoint saved before presets had the
    /// field gets the official 3 and a note naming the shipped value, and <c>--arch</c> (the shipped preset) applies it.
    /// </summary>
    [TestMethod]
    public void TheQuickPresetsLearningRateComesFromThePresetAndOldCheckpointsAreTold()
    {
        TestData.RequireFashionMnist();
        string dir = TestData.NewFolder("lincls-quick-lr");
        var quick = PresetCatalog.Get("vit-tiny-fmnist-quick");
        (double Lr, List<string> Info) Run(string checkpoint, ModelPreset? arch)
        {
            var info = new List<string>();
            var evaluator = new LinearEvaluator();
            evaluator.Info += info.Add;
            var result = evaluator.Run(new LinclsOptions
            {
                Weights = new() { Checkpoint = checkpoint, Arch = arch },
                OutputDir = Path.Combine(dir, "run"),
                Epochs = 1,
                Batch = 64,
                Data = new() { Limit = 64, TestLimit = 16 },
                Compute = new() { Threads = 1 },
            });
            return (result.History[0].Lr, info);
        }

        string current = EvalTestModels.ToolkitCheckpoint(quick, Directory.CreateDirectory(Path.Combine(dir, "current")).FullName);
        var (lr, info) = Run(current, null);
        Assert.AreEqual(QuickLinclsBaseLr * 64 / 256, lr, 1e-12);
        Assert.IsTrue(info.Any(l => l.Contains("(the preset's lincls.base_lr)")), string.Join("\n", info));
        Assert.IsFalse(info.Any(l => l.StartsWith("note:")));
        Assert.IsTrue(info.Any(l => l.Contains("crops: random-resized from 1 of the area, test centre 1")), string.Join("\n", info));
        Assert.IsTrue(info.Any(l => l.StartsWith("features standardised by their mean and std over 64 training images")), string.Join("\n", info));

        string old = EvalTestModels.ToolkitCheckpoint(quick with { Lincls = new() },
                                                     Directory.CreateDirectory(Path.Combine(dir, "old")).FullName);
        (lr, info) = Run(old, null);
        Assert.AreEqual(3.0 * 64 / 256, lr, 1e-12);
        Assert.IsTrue(info.Any(l => l.Contains("crops: random-resized from 0.08 of the area, test centre 0.875")), string.Join("\n", info));
        Assert.IsFalse(info.Any(l => l.StartsWith("features standardised")), string.Join("\n", info));
        var note = info.SingleOrDefault(l => l.StartsWith("note:"));
        Assert.IsNotNull(note, string.Join("\n", info));
        StringAssert.Contains(note, old);
        StringAssert.Contains(note, FormattableString.Invariant($"(--lr {QuickLinclsBaseLr}, --crop-min 1, --eval-crop 1, --standardize true; saved before presets had them): pass --arch vit-tiny-fmnist-quick"));
        (lr, _) = Run(old, quick);
        Assert.AreEqual(QuickLinclsBaseLr * 64 / 256, lr, 1e-12);
    }

    [TestMethod]
    public void LinclsKeepsResNetBatchNormStatisticsUntouched()
    {
        TestData.RequireFashionMnist();
        string dir = TestData.NewFolder("lincls-resnet");
        var preset = EvalTestModels.MicroResNet28;
        string pretrained = EvalTestModels.ToolkitCheckpoint(preset, dir, seed: 4);
        var result = new LinearEvaluator().Run(new LinclsOptions
        {
            Weights = new() { Checkpoint = pretrained },
            OutputDir = Path.Combine(dir, "run"),
            Epochs = 1,
            Batch = 64,
            Data = new() { Limit = 256, TestLimit = 128 },
            Compute = new() { Threads = 1 },
        });
        TestContext.WriteLine($"top1 {result.Top1:F2}");
        using var before = CheckpointImporter.Load(pretrained, null, null);
        using var after = CheckpointImporter.Load(result.Checkpoint, null, preset);
        Assert.IsTrue(before.Backbone.state_dict().Keys.Any(k => k.EndsWith("running_mean")), "no BatchNorm statistics to check");
        Assert.AreEqual(0, Differences(before, after).Count, string.Join(", ", Differences(before, after)));
        Assert.AreEqual(10, after.Head!.Classes);
    }

    [TestMethod]
    public void TheOfficialHeadInitAndLearningRates()
    {
        manual_seed(0);
        using var head = LinearEvaluator.NewHead(384, 1000);
        Assert.AreEqual(0.01, head.weight!.std().item<float>(), 2e-4);
        Assert.AreEqual(0f, head.bias!.abs().max().item<float>());
        Assert.AreEqual(3.0, LinclsOptions.DefaultBaseLr(PresetCatalog.Get("vit-small")));
        Assert.AreEqual(0.1, LinclsOptions.DefaultBaseLr(PresetCatalog.Get("resnet50")));
        // A preset may carry its own (lincls.base_lr); the official value stays available.
        var quick = PresetCatalog.Get("vit-tiny-fmnist-quick");
        Assert.AreEqual(QuickLinclsBaseLr, quick.Lincls.BaseLr);
        Assert.AreEqual(QuickLinclsBaseLr, LinclsOptions.DefaultBaseLr(quick));
        Assert.AreEqual(3.0, LinclsOptions.OfficialBaseLr(quick));
        var withLr = PresetCatalog.Get("resnet50").WithLincls(lincls => lincls with { BaseLr = 0.5 });
        Assert.AreEqual(0.5, LinclsOptions.DefaultBaseLr(withLr));
        Assert.AreEqual(0.1, LinclsOptions.OfficialBaseLr(withLr));
    }

    [TestMethod]
    public void LinclsFromTheCommandLinePrintsAccuracyAndWritesAnExportableClassifier()
    {
        TestData.RequireFashionMnist();
        string dir = TestData.NewFolder("lincls-cli");
        string pretrained = EvalTestModels.ToolkitCheckpoint(EvalTestModels.MicroVit28, dir);
        string run = Path.Combine(dir, "run");
        var (code, output, error) = EvalTestModels.Mocov3("lincls", "--checkpoint", pretrained, "--out", run, "--epochs", "2", "--batch", "64",
            "--limit", "256", "--test-limit", "64", "--threads", "1");
        TestContext.WriteLine(output);
        Assert.AreEqual(0, code, error);
        StringAssert.Contains(output, "epoch 1/2");
        StringAssert.Contains(output, "epoch 2/2");
        StringAssert.Contains(output, "top1=");
        StringAssert.Contains(output, "top5=");

        (code, output, error) = EvalTestModels.Mocov3("export", "--checkpoint", Path.Combine(run, "checkpoint.pth"), "--arch",
            Path.Combine(run, "preset.json"), "--head", "--out", Path.Combine(dir, "lincls.onnx"), "--verify");
        Assert.AreEqual(0, code, error);
        StringAssert.Contains(output, "logits: max_abs_diff=");   // with --head, the logits are checked too
        StringAssert.Contains(output, "verify: passed");

        string bad = Path.Combine(dir, "truncated.ckpt");
        File.WriteAllBytes(bad, File.ReadAllBytes(pretrained)[..40]);
        (code, _, error) = EvalTestModels.Mocov3("lincls", "--checkpoint", bad, "--out", run, "--epochs", "1");
        Assert.AreEqual(2, code);
        StringAssert.Contains(error, bad);
    }

    [TestMethod]
    public void StandardisationFoldedIntoTheHeadGivesTheLogitsTheHeadWasTrainedOn()
    {
        manual_seed(7);
        using var scope = NewDisposeScope();
        // Features far from standardised: offset and scaled per dimension, one dimension constant.
        var features = randn(300, 12) * linspace(0.1, 40, 12) + linspace(-50, 5, 12);
        features[.., 3] = tensor(2.5f);
        using var stats = FeatureStatistics.Of(features.split(64).Select(b => b.clone()));
        Assert.AreEqual(300, stats.Count);
        var standardized = stats.Standardize(features);
        var columns = standardized.clone();
        columns[.., 3] = tensor(0f);
        Assert.IsTrue(columns.mean([0L]).abs().max().item<float>() < 1e-4, "standardised features have mean 0: "+ string.Join(", ", columns.mean([0L]).data<float>().ToArray()));
        Assert.AreEqual(1.0, standardized[.., 0].std(unbiased: false).item<float>(), 1e-4);
        Assert.AreEqual(0f, standardized[.., 3].abs().max().item<float>(), 1e-6f, "a constant dimension stays 0, not blown up");

        using var head = LinearEvaluator.NewHead(12, 5);
        using (no_grad()) head.bias!.copy_(tensor(new[] { 0.1f, -0.2f, 0.3f, 0f, 1f }));
        var expected = head.forward(standardized).detach().clone();
        stats.FoldInto(head);
        var actual = head.forward(features);
        float diff = (actual - expected).abs().max().item<float>();
        Assert.IsTrue(diff < 1e-3 * expected.abs().max().item<float>(), $"folded head differs by {diff}");
    }

    [TestMethod]
    public void AStandardisedRunSavesAPlainHeadThatScoresWhatTheRunReported()
    {
        TestData.RequireFashionMnist();
        string dir = TestData.NewFolder("lincls-standardize");
        var preset = EvalTestModels.MicroVit28.WithLincls(lincls => lincls with { Standardize = true, CropMin = 1.0, EvalCrop = 1.0 });
        string pretrained = EvalTestModels.ToolkitCheckpoint(preset, dir, seed: 3);
        var info = new List<string>();
        var evaluator = new LinearEvaluator();
        evaluator.Info += info.Add;
        var result = evaluator.Run(new LinclsOptions
        {
            Weights = new() { Checkpoint = pretrained },
            OutputDir = Path.Combine(dir, "run"),
            Epochs = 2,
            Batch = 64,
            Seed = 1,
            Data = new() { Limit = 1024, TestLimit = 300 },
            Compute = new() { Threads = 1 },
        });
        Assert.IsTrue(info.Any(l => l.StartsWith("features standardised by their mean and std over 1024 training images")), string.Join("\n", info));
        Assert.IsTrue(info.Any(l => l.Contains("crops: random-resized from 1 of the area, test centre 1")), string.Join("\n", info));

        // The saved classifier reads the raw embedding (the statistics are in its weights) and scores what the run reported.
        var arch = PresetCatalog.Load(Path.Combine(dir, "run", ClassifierCheckpoint.PresetName));
        Assert.AreEqual(true, arch.Lincls.Standardize);
        using var saved = CheckpointImporter.Load(result.Checkpoint, null, arch);
        var test = new MoCoV3.Data.SubsetDataset(MoCoV3.Data.DatasetFactory.Open("auto", null, preset.Input.ImageSize, preset.Input.Channels, train: false), 300);
        var transforms = new ImageTransforms(preset, 1.0, 1.0);
        saved.Backbone.eval();
        var accuracy = ClassifierEvaluation.Run(test, 100, CPU, transforms.Eval,
            x => nn.functional.linear(saved.Backbone.Embed(x), saved.Head!.Weight, saved.Head.Bias));
        Assert.AreEqual(result.Top1, accuracy.Top1, 1e-9);
        Assert.IsTrue(result.Top1 > 30, $"top1 {result.Top1} is near chance (10)");
    }
}
