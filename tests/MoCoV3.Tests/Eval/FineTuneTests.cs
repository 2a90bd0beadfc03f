using MoCoV3.Inference;
using MoCoV3.Eval.Classification;
using MoCoV3.Eval.FineTune;
using MoCoV3.Export;
using MoCoV3.Checkpoints;
using MoCoV3.Models;
using static TorchSharp.torch;

namespace MoCoV3.Tests.Eval;

[TestClass]
public sealed class FineTuneTests
{
    public TestContext TestContext { get; set; } = null!;

    private static float[] Values(Tensor t) => t.detach().cpu().contiguous().data<float>().ToArray();

    [TestMethod]
    public void DropPathIsIdentityInEvalModeAndTheZeroDefaultChangesNothing()
    {
        var preset = TestPresets.MicroVit.WithVit(vit => vit with { Depth = 3 });
        manual_seed(5);
        using var plain = new VisionTransformer(preset);
        manual_seed(5);
        using var dropped = new VisionTransformer(preset);
        CollectionAssert.AreEqual(new[] { 0.0, 0.0, 0.0 }, dropped.DropPathRates.ToArray());
        dropped.SetDropPath(0.2);
        CollectionAssert.AreEqual(new[] { 0.0, 0.1, 0.2 }, dropped.DropPathRates.ToArray());
        using var x = randn(8, 1, 16, 16);

        plain.train();
        using var trainDefault = plain.forward(x);
        plain.eval();
        using var evalDefault = plain.forward(x);
        dropped.eval();
        using var evalDropped = dropped.forward(x);
        // Rate 0 (pretraining) and eval mode are both exact pass-throughs: bit-identical outputs.
        CollectionAssert.AreEqual(Values(evalDefault), Values(trainDefault));
        CollectionAssert.AreEqual(Values(evalDefault), Values(evalDropped));

        dropped.train();
        using var trainDropped = dropped.forward(x);
        Assert.IsTrue(trainDropped.sub(evalDefault).abs().max().item<float>() > 1e-3, "drop path 0.2 in training changed nothing");
    }

    [TestMethod]
    public void DropPathDropsWholeSamplesAndRescalesTheKeptOnes()
    {
        using var module = new DropPath(0.25);
        module.train();
        manual_seed(3);
        using var y = module.forward(ones(4000, 3, 2));
        var rows = y.reshape(4000, 6);
        using var rowMin = rows.amin([1]);
        using var rowMax = rows.amax([1]);
        // Every sample is either all 0 or all 1/(1 - 0.25).
        Assert.IsTrue(rowMin.eq(rowMax).all().item<bool>());
        float[] kept = Values(rowMin);
        Assert.IsTrue(kept.All(v => v == 0f || Math.Abs(v - 4f / 3f) < 1e-6), "values other than 0 and 4/3");
        double keptShare = kept.Count(v => v > 0) / 4000.0;
        Assert.AreEqual(0.75, keptShare, 0.03);
        module.eval();
        using var z = ones(5, 3);
        using var same = module.forward(z);
        CollectionAssert.AreEqual(Values(z), Values(same));
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => module.Rate = 1.0);
    }

    [TestMethod]
    public void LabelSmoothedLossEqualsTheHandComputation()
    {
        double[][] z = [[1.0, 2.0, 3.0], [0.5, -1.0, 2.0]];
        long[] y = [2, 0];
        const double eps = 0.1;
        double expected = 0;
        for (int i = 0; i < 2; i++)
        {
            double logSum = Math.Log(z[i].Sum(Math.Exp));
            for (int c = 0; c < 3; c++)
            {
                double target = (c == y[i] ? 1 - eps : 0) + eps / 3;
                expected -= target * (z[i][c] - logSum);
            }
        }
        expected /= 2;
        using var logits = tensor(z.SelectMany(r => r.Select(v => (float)v)).ToArray(), [2, 3]);
        using var labels = tensor(y);
        using var loss = ClassificationLoss.Smoothed(logits, labels, eps);
        TestContext.WriteLine($"loss {loss.item<float>()} expected {expected}");
        Assert.AreEqual(expected, loss.item<float>(), 1e-6);
        // ε = 0 is the plain cross-entropy.
        using var plain = ClassificationLoss.Smoothed(logits, labels, 0);
        using var reference = nn.functional.cross_entropy(logits, labels);
        Assert.AreEqual(reference.item<float>(), plain.item<float>(), 1e-6);
    }

    [TestMethod]
    public void MixupBlendsImagesAndLabelsWithLambda()
    {
        // Image 0 is all 0, image 1 all 1; labels 0 and 2 of 3 classes.
        using var images = cat([zeros(1, 1, 2, 2), ones(1, 1, 2, 2)], 0);
        using var labels = tensor(new long[] { 0, 2 });
        var draw = new MixDraw(false, 0.3);
        using var mixed = MixupCutmix.MixImages(images, draw);
        CollectionAssert.AreEqual(new[] { 0.7f, 0.7f, 0.7f, 0.7f, 0.3f, 0.3f, 0.3f, 0.3f }, Values(mixed).Select(v => MathF.Round(v, 6)).ToArray());

        using var hard = MixupCutmix.MixTargets(labels, 3, smoothing: 0, lambda: 0.3);
        AssertClose([0.3, 0, 0.7, 0.7, 0, 0.3], Values(hard));
        // With smoothing 0.1: 0.3·[0.9+0.1/3, 0.1/3, 0.1/3] + 0.7·[0.1/3, 0.1/3, 0.9+0.1/3].
        using var soft = MixupCutmix.MixTargets(labels, 3, smoothing: 0.1, lambda: 0.3);
        double on = 0.9 + 0.1 / 3, off = 0.1 / 3;
        AssertClose([0.3 * on + 0.7 * off, off, 0.3 * off + 0.7 * on, 0.7 * on + 0.3 * off, off, 0.7 * off + 0.3 * on], Values(soft));
        Assert.AreEqual(2.0, soft.sum().item<float>(), 1e-5);
    }

    [TestMethod]
    public void CutmixPastesTheBoxAndWeighsLabelsByItsArea()
    {
        using var images = cat([zeros(1, 1, 4, 4), ones(1, 1, 4, 4)], 0);
        using var labels = tensor(new long[] { 1, 0 });
        // Rows 1..2, columns 0..1: 4 of 16 pixels come from the partner, so λ = 0.75.
        var draw = new MixDraw(true, 0.75, Top: 1, Bottom: 3, Left: 0, Right: 2);
        using var mixed = MixupCutmix.MixImages(images, draw);
        float[] first = Values(mixed[0]);
        for (int r = 0; r < 4; r++)
            for (int c = 0; c < 4; c++)
                Assert.AreEqual(r is 1 or 2 && c < 2 ? 1f : 0f, first[r * 4 + c], $"pixel ({r},{c})");
        Assert.AreEqual(16 - 4, Values(mixed[1]).Count(v => v == 1f));
        using var targets = MixupCutmix.MixTargets(labels, 2, smoothing: 0, lambda: draw.Lambda);
        AssertClose([0.25, 0.75, 0.75, 0.25], Values(targets));

        // Drawn boxes: λ is always 1 − box area / image area; cutmix about half the time; mixup's λ ~ Beta(0.8, 0.8), mean 0.5.
        var mix = new MixupCutmix();
        var rng = new Random(11);
        int cutmixCount = 0;
        double mixupLambdaSum = 0;
        const int draws = 4000;
        for (int i = 0; i < draws; i++)
        {
            var d = mix.Draw(rng, 28, 20);
            Assert.IsTrue(d.Lambda is >= 0 and <= 1, $"λ {d.Lambda}");
            if (!d.CutMix)
            {
                mixupLambdaSum += d.Lambda;
                continue;
            }
            cutmixCount++;
            Assert.IsTrue(d.Top >= 0 && d.Bottom <= 28 && d.Left >= 0 && d.Right <= 20 && d.Top <= d.Bottom && d.Left <= d.Right);
            Assert.AreEqual(1 - (d.Bottom - d.Top) * (d.Right - d.Left) / (28.0 * 20), d.Lambda, 1e-12);
        }
        Assert.AreEqual(0.5, cutmixCount / (double)draws, 0.03);
        Assert.AreEqual(0.5, mixupLambdaSum / (draws - cutmixCount), 0.03);
    }

    [TestMethod]
    public void NoDecayGroupHoldsBiasesNormsPositionAndClassToken()
    {
        using var vit = new VisionTransformer(TestPresets.MicroVit);
        foreach (var p in vit.parameters()) p.requires_grad = true;
        var (decay, noDecay) = WeightDecayGroups.Split(vit);
        var exempt = vit.named_parameters().Where(np => noDecay.Contains(np.parameter)).Select(np => np.name).ToHashSet();
        Assert.IsTrue(exempt.SetEquals(vit.named_parameters().Select(np => np.name)
            .Where(n => n.EndsWith(".bias") || n.Contains("norm") || n is "pos_embed" or "cls_token")));
        Assert.IsTrue(decay.All(p => p.dim() >= 2));
        Assert.AreEqual(vit.parameters().Count(), decay.Count + noDecay.Count);
    }

    [TestMethod]
    public void FineTuningLowersTheLossAndTheOnnxClassifierMatchesTorchSharp()
    {
        TestData.RequireFashionMnist();
        string dir = TestData.NewFolder("finetune");
        var preset = EvalTestModels.MicroVit28;
        var options = new FineTuneOptions
        {
            Weights = new() { Checkpoint = EvalTestModels.ToolkitCheckpoint(preset, dir) },
            OnnxPath = Path.Combine(dir, "classifier.onnx"),
            OutputDir = Path.Combine(dir, "run"),
            MaxSteps = 60,
            Batch = 64,
            Lr = 2e-3,
            LogEvery = 5,
            Seed = 1,
            // Mixing makes the per-step loss too noisy to compare a few dozen steps; it has its own tests and the CLI test uses it.
            MixupAlpha = 0,
            CutmixAlpha = 0,
            CropMin = 0.25,
            Data = new() { Limit = 4096, TestLimit = 500 },
            Compute = new() { Threads = 1 },
        };
        var result = new FineTuner().Run(options);
        double first = result.Losses.Take(3).Average(), last = result.Losses.TakeLast(3).Average();
        TestContext.WriteLine(FormattableString.Invariant(
            $"loss {first:F4} -> {last:F4}; top1 {result.Test.Top1:F2} top5 {result.Test.Top5:F2}; {result.ElapsedSeconds:F1}s; {result.Verify!.Logits}"));

        Assert.AreEqual(60, result.Steps);
        Assert.IsTrue(first > 2.0, $"initial loss {first}: 10 classes start near ln 10 = 2.30");
        Assert.IsTrue(last < first - 0.25, $"loss did not go down: {first:F4} -> {last:F4}");
        Assert.AreEqual(500, result.Test.Count);
        Assert.IsTrue(result.Test.Top1 > 25, $"top1 {result.Test.Top1} is near chance (10)");
        Assert.IsTrue(result.Test.Top5 >= result.Test.Top1);
        Assert.IsTrue(result.Verify!.Logits.MaxAbsDiff <= 1e-4, result.Verify!.Logits.ToString());
        Assert.IsTrue(result.Verify!.Embedding.MaxAbsDiff <= 1e-4, result.Verify!.Embedding.ToString());
        Assert.AreEqual(16, result.Verify!.Logits.Batch);
        Assert.AreEqual(13, CsvLog.ReadColumn(Path.Combine(options.OutputDir, "metrics.csv"), "loss").Count);

        // The run's checkpoint is a timm state dict with the head: it imports back with the same logits.
        using var imported = CheckpointImporter.Load(result.Checkpoint, null, PresetCatalog.Load(Path.Combine(options.OutputDir, ClassifierCheckpoint.PresetName)));
        Assert.IsNotNull(imported.Head);
        Assert.AreEqual(10, imported.Head.Classes);
        using var runner = new OnnxModelRunner(options.OnnxPath);
        CollectionAssert.AreEquivalent(new[] { "embedding", "logits" }, runner.OutputNames.ToArray());
        using var pixels = TorchReference.RandomPixels(4, 1, 28, seed: 2);
        float[] onnxLogits = runner.Run(Values(pixels), 4)["logits"];
        var reimported = new BackboneClassifier(imported.Backbone, nn.Linear(preset.Vit.EmbedDim, 10));
        using (no_grad())
        {
            reimported.Head.weight!.copy_(imported.Head.Weight);
            reimported.Head.bias!.copy_(imported.Head.Bias!);
        }
        var check = ClassifierExport.Verify(options.OnnxPath, reimported, preset, pixels);
        Assert.IsTrue(check.Logits.MaxAbsDiff <= 1e-4, $"re-imported checkpoint vs ONNX: {check.Logits}");
        Assert.AreEqual(40, onnxLogits.Length);
    }

    [TestMethod]
    public void ResNetFineTuningRunsAndExports()
    {
        TestData.RequireFashionMnist();
        string dir = TestData.NewFolder("finetune-resnet");
        var preset = EvalTestModels.MicroResNet28;
        var result = new FineTuner().Run(new FineTuneOptions
        {
            Weights = new() { Checkpoint = EvalTestModels.ToolkitCheckpoint(preset, dir) },
            OnnxPath = Path.Combine(dir, "resnet.onnx"),
            OutputDir = Path.Combine(dir, "run"),
            MaxSteps = 4,
            Batch = 32,
            Seed = 1,
            Data = new() { Limit = 256, TestLimit = 64 },
            Compute = new() { Threads = 1 },
        });
        TestContext.WriteLine($"{result.Verify!.Logits}");
        Assert.AreEqual(4, result.Steps);
        Assert.IsTrue(result.Verify!.Passed, result.Verify!.Logits.ToString());
        Assert.IsTrue(result.Losses.All(double.IsFinite));
    }

    [TestMethod]
    public void ABadCheckpointIsRefusedWithItsName()
    {
        string dir = TestData.NewFolder("finetune-bad");
        string bad = Path.Combine(dir, "broken.pth");
        File.WriteAllText(bad, "this is not a checkpoint");
        var options = new FineTuneOptions { Weights = new() { Checkpoint = bad }, OnnxPath = Path.Combine(dir, "c.onnx"), OutputDir = Path.Combine(dir, "run"), MaxSteps = 1 };
        var e = Assert.ThrowsExactly<InvalidDataException>(() => new FineTuner().Run(options));
        StringAssert.Contains(e.Message, bad);
        StringAssert.Contains(e.Message, "not a PyTorch checkpoint");

        var (code, _, error) = EvalTestModels.Mocov3("finetune", "--checkpoint", bad, "--out", Path.Combine(dir, "c.onnx"), "--max-steps", "1");
        Assert.AreEqual(2, code);
        StringAssert.StartsWith(error, "error: ");
        StringAssert.Contains(error, bad);
        (code, _, error) = EvalTestModels.Mocov3("finetune", "--checkpoint", Path.Combine(dir, "missing.pth"), "--out", Path.Combine(dir, "c.onnx"));
        Assert.AreEqual(2, code);
        StringAssert.Contains(error, "missing.pth");
    }

    [TestMethod]
    public void FineTuneFromTheCommandLineWritesAClassifierThatExportRereads()
    {
        TestData.RequireFashionMnist();
        string dir = TestData.NewFolder("finetune-cli");
        var preset = EvalTestModels.MicroVit28;
        string checkpoint = EvalTestModels.ToolkitCheckpoint(preset, dir);
        string onnx = Path.Combine(dir, "classifier.onnx");
        var (code, output, error) = EvalTestModels.Mocov3("finetune", "--checkpoint", checkpoint, "--out", onnx, "--limit", "256",
            "--test-limit", "64", "--max-steps", "4", "--batch", "32", "--log-every", "2", "--threads", "1");
        TestContext.WriteLine(output);
        Assert.AreEqual(0, code, error);
        StringAssert.Contains(output, "step 4/4");
        StringAssert.Contains(output, "top1=");
        StringAssert.Contains(output, "top5=");
        StringAssert.Contains(output, "max_abs_diff=");
        StringAssert.Contains(output, "verify: passed");
        string run = Path.Combine(dir, "classifier.run");
        Assert.IsTrue(File.Exists(Path.Combine(run, "metrics.csv")) && File.Exists(Path.Combine(run, "results.json")));

        (code, output, error) = EvalTestModels.Mocov3("export", "--checkpoint", Path.Combine(run, "checkpoint.pth"), "--arch",
            Path.Combine(run, "preset.json"), "--head", "--out", Path.Combine(dir, "again.onnx"), "--verify");
        Assert.AreEqual(0, code, error);
        StringAssert.Contains(output, "verify: passed");
    }

    private static void AssertClose(double[] expected, float[] actual)
    {
        Assert.AreEqual(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++) Assert.AreEqual(expected[i], actual[i], 1e-6, $"index {i}");
    }
}
