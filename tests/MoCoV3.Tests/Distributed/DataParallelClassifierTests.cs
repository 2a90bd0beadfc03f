using MoCoV3.Checkpoints;
using MoCoV3.Data;
using MoCoV3.Distributed;
using MoCoV3.Eval.Classification;
using MoCoV3.Eval.FineTune;
using MoCoV3.Models;
using MoCoV3.Tests.Eval;
using static TorchSharp.torch;

namespace MoCoV3.Tests.Distributed;

/// <summary>
/// Data-parallel <c>lincls</c> and <c>finetune</c> end to end: the real <c>mocov3</c> command on 2 ranks (Open MPI) at a
/// global batch trains like the same command in one process — same losses, same final weights, same test accuracy — with
/// rank 0 alone writing and reporting; a control (tests/MpiHost, the same settings but one thing done per rank) differs,
/// so the comparison can fail. Micro models, tiny data limits, a few steps, lr &gt; 0, one thread per rank.
/// </summary>
[TestClass]
public sealed class DataParallelClassifierTests
{
    public TestContext TestContext { get; set; } = null!;

    /// <summary>
    /// The frozen micro ViT, 2 epochs of global batch 32 over 99 images: the last batch of each epoch (3 images) splits 1 / 2,
    /// each rank's loss weighted by its share; 51 test images split 25 / 26 and the hits summed. Control: each rank draws the
    /// crops of its slice as a batch of its own.
    /// </summary>
    [TestMethod]
    public void LinclsOnTwoRanksAtGlobalBatch32TrainsLikeOneProcess()
    {
        TestData.RequireFashionMnist();
        string root = TestData.NewFolder("dp-lincls-");
        string pretrained = EvalTestModels.ToolkitCheckpoint(EvalTestModels.MicroVit28, root, seed: 3);
        string one = Path.Combine(root, "np1"), two = Path.Combine(root, "np2"), control = Path.Combine(root, "np2-per-rank-crops");
        string[] Args(string dir) =>
            ["lincls", "--checkpoint", pretrained, "--epochs", "2", "--batch", "32", "--limit", "99", "--test-limit", "51", "--seed", "5", "--threads", "1", "--out", dir];

        var (_, parallel) = OneProcessThenRanks(2, Args(one), Args(two));
        MpiHostRun.Scenario("lincls", 2, control, pretrained, "per-rank");

        Assert.AreEqual(1, Lines(parallel.Out, "top1="), $"rank 0 alone reports:\n{parallel.Out}");
        StringAssert.Contains(parallel.Out, "(test images: 51)", "the ranks' shares of the test set add up to it once");
        Assert.AreEqual(1, Lines(parallel.Out, "data-parallel over 2 ranks"), parallel.Out);
        Assert.AreEqual(1, Lines(parallel.Out, "epoch 2/2 "), parallel.Out);
        Assert.IsTrue(File.Exists(Path.Combine(two, "results.json")));

        var (loss1, loss2, lossControl) = (Column(one, "loss"), Column(two, "loss"), Column(control, "loss"));
        var (top1, top2) = (Column(one, "top1"), Column(two, "top1"));
        Assert.AreEqual(2, loss1.Count);
        double lossDiff = RelativeDiff(loss1, loss2), controlLossDiff = RelativeDiff(loss1, lossControl);
        double top1Diff = top1.Zip(top2).Max(p => Math.Abs(p.First - p.Second));

        using var a = Classifier(one);
        using var b = Classifier(two);
        using var c = Classifier(control);
        using var start = CheckpointImporter.Load(pretrained, null, null);
        double scale = MaxAbs(Head(a)), weightDiff = MaxDiff(Head(a), Head(b)), controlWeightDiff = MaxDiff(Head(a), Head(c));
        double backboneMoved = MaxDiff(Tensors(start), Tensors(b));
        TestContext.WriteLine($"lincls: loss {loss1[0]:F4} -> {loss1[^1]:F4}, top1 {top1[^1]:F2}; np=2 vs np=1: loss rel diff {lossDiff:E1}, top1 diff {top1Diff:F2}, " +
                              $"head max|Δw| {weightDiff:E1} (max|w| {scale:F3}); per-rank crops: loss rel diff {controlLossDiff:E1}, head max|Δw| {controlWeightDiff:E1}");

        Assert.IsTrue(lossDiff <= 1e-4, $"per-epoch loss relative difference {lossDiff:E2}");
        Assert.IsTrue(weightDiff <= 1e-3 * scale, $"head max|Δw| {weightDiff:E2} > 1e-3 · {scale:F3}");
        Assert.IsTrue(top1Diff <= 100.0 / 51 + 1e-9, $"top-1 differs by {top1Diff:F2} points, more than one of the 51 test images");
        Assert.AreEqual(0.0, backboneMoved, "the frozen backbone is saved as loaded");
        Assert.IsTrue(controlLossDiff > 1e-3, $"per-rank crops must give other losses: {controlLossDiff:E2}");
        Assert.IsTrue(controlWeightDiff > 10 * weightDiff, $"per-rank crops must give another head: {controlWeightDiff:E2} vs {weightDiff:E2}");
    }

    /// <summary>
    /// BatchNorm2d in every block trains: SyncBatchNorm. Control: per-rank BatchNorm statistics. The weights are compared by
    /// the share of the update that differs, not element by element: AdamW's first steps are ±lr for any gradient above its
    /// ε, so an element whose gradient is rounding noise moves by lr either way (and the running statistics follow). One
    /// process with the SyncBatchNorm formula instead of libtorch's BatchNorm differed from one process by as much (batch 16:
    /// max|Δw| 1.3e-3, 4.7% of the update, against 1.2e-3 and 4.2% for 2 ranks; 2026-12-02).
    /// </summary>
    [TestMethod]
    public void ResNetFineTuningOnTwoRanksAtGlobalBatch8TrainsLikeOneProcess() =>
        FineTunesLikeOneProcess(EvalTestModels.MicroResNet28, dropPath: "0", elementwise: false, control: "local-bn");

    /// <summary>
    /// Drop path 0.2 (masks drawn for the global batch); no BatchNorm, so the weights agree element by element. Control: each
    /// rank draws the crops and the mixing of its slice as a batch of its own (Mixup/CutMix partners within the slice).
    /// </summary>
    [TestMethod]
    public void VitFineTuningWithDropPathOnTwoRanksAtGlobalBatch8TrainsLikeOneProcess() =>
        FineTunesLikeOneProcess(EvalTestModels.MicroVit28, dropPath: "0.2", elementwise: true, control: "per-rank");

    /// <summary>4 steps of global batch 8, lr 1e-3, Mixup/CutMix on (each image's partner is the mirrored row of the global batch).</summary>
    private void FineTunesLikeOneProcess(ModelPreset preset, string dropPath, bool elementwise, string? control)
    {
        TestData.RequireFashionMnist();
        string root = TestData.NewFolder($"dp-finetune-{preset.Arch.Name()}-");
        string pretrained = EvalTestModels.ToolkitCheckpoint(preset, root, seed: 3);
        string one = Path.Combine(root, "np1"), two = Path.Combine(root, "np2"), other = Path.Combine(root, $"np2-{control}");
        string[] Args(string dir) =>
            ["finetune", "--checkpoint", pretrained, "--max-steps", "4", "--batch", "8", "--limit", "32", "--test-limit", "21", "--lr", "1e-3",
             "--drop-path", dropPath, "--log-every", "1", "--seed", "5", "--threads", "1", "--out", Path.Combine(dir, "classifier.onnx"), "--run-dir", dir];

        var (_, parallel) = OneProcessThenRanks(2, Args(one), Args(two));
        if (control is not null)
        {
            var reports = MpiHostRun.Scenario("finetune", 2, other, pretrained, dropPath, control);
            Assert.IsTrue(reports[0].GetProperty("verified").GetBoolean() && !reports[1].GetProperty("verified").GetBoolean(), "rank 0 alone exports");
        }

        Assert.AreEqual(1, Lines(parallel.Out, "top1="), $"rank 0 alone reports:\n{parallel.Out}");
        Assert.AreEqual(1, Lines(parallel.Out, "verify: passed"), parallel.Out);
        StringAssert.Contains(parallel.Out, "(test images: 21)", "the ranks' shares of the test set add up to it once");
        Assert.AreEqual(1, Lines(parallel.Out, "step 4/4 "), parallel.Out);
        Assert.IsTrue(File.Exists(Path.Combine(two, "classifier.onnx")) && File.Exists(Path.Combine(two, "results.json")));

        var (loss1, loss2) = (Column(one, "loss"), Column(two, "loss"));
        Assert.AreEqual(4, loss1.Count);
        Assert.IsTrue(Column(one, "lr").Skip(1).All(lr => lr > 1e-4), "lr > 0 after the warmup step");
        double lossDiff = RelativeDiff(loss1, loss2);

        using var a = Classifier(one);
        using var b = Classifier(two);
        using var start = CheckpointImporter.Load(pretrained, null, null);
        var (p0, pa, pb) = (Parameters(start), Parameters(a), Parameters(b));
        double scale = MaxAbs(pa), weightDiff = MaxDiff(pa, pb), trained = MaxDiff(p0, pa), update = L2Diff(p0, pa);
        double updateDiff = L2Diff(pa, pb) / update; // the share of the one-process update that the data-parallel run does otherwise
        var (b0, ba, bb) = (Buffers(start), Buffers(a), Buffers(b)); // BatchNorm running statistics
        double bufferScale = ba.Length == 0 ? 0 : MaxAbs(ba), bufferDiff = ba.Length == 0 ? 0 : MaxDiff(ba, bb);
        double bufferUpdateDiff = ba.Length == 0 ? 0 : L2Diff(ba, bb) / L2Diff(b0, ba);
        string report = $"{preset.Name}: loss {string.Join(", ", loss1.Select(l => l.ToString("F4")))}; np=2 vs np=1: loss rel diff {lossDiff:E1}, " +
                        $"max|Δw| {weightDiff:E1} (in {Worst(pa, pb)}, max|w| {scale:F3}, training moved them by {trained:E1}), ‖Δw‖/‖update‖ {updateDiff:E1}, " +
                        $"{ba.Length} buffers max|Δ| {bufferDiff:E1} (max {bufferScale:F3}), ‖Δ‖/‖update‖ {bufferUpdateDiff:E1}";

        double controlLossDiff = 0, controlUpdateDiff = 0;
        if (control is not null)
        {
            controlLossDiff = RelativeDiff(loss1, Column(other, "loss"));
            using var c = Classifier(other);
            controlUpdateDiff = L2Diff(pa, Parameters(c)) / update;
            report += $"; {control}: loss rel diff {controlLossDiff:E1}, ‖Δw‖/‖update‖ {controlUpdateDiff:E1}";
        }
        TestContext.WriteLine(report);

        Assert.IsTrue(lossDiff <= 1e-4, $"per-step loss relative difference {lossDiff:E2}");
        Assert.IsTrue(updateDiff <= 0.1, $"‖Δw‖ is {updateDiff:E2} of the update");
        Assert.IsTrue(bufferUpdateDiff <= 0.1, $"running statistics: ‖Δ‖ is {bufferUpdateDiff:E2} of their update");
        if (elementwise)
        {
            Assert.IsTrue(weightDiff <= 1e-3 * scale, $"max|Δw| {weightDiff:E2} > 1e-3 · {scale:F3}");
            Assert.IsTrue(trained > 10 * weightDiff, $"training moved the weights by {trained:E2} only");
        }
        if (control is not null)
        {
            Assert.IsTrue(controlLossDiff > 1e-4, $"{control} must fail the loss check: {controlLossDiff:E2}");
            Assert.IsTrue(controlUpdateDiff > 0.1, $"{control} must fail the weight check: ‖Δw‖ {controlUpdateDiff:E2} of the update");
        }
    }

    /// <summary>
    /// <c>lincls --standardize</c> on 2 ranks: each rank embeds half of the images the feature statistics are measured on
    /// and the sums are all-reduced, so both standardise with the statistics of all 99 (as one process does).
    /// </summary>
    [TestMethod]
    public void StandardizedLinclsOnTwoRanksSharesTheFeatureStatistics()
    {
        TestData.RequireFashionMnist();
        string root = TestData.NewFolder("dp-lincls-standardize-");
        string pretrained = EvalTestModels.ToolkitCheckpoint(EvalTestModels.MicroVit28, root, seed: 3);
        string one = Path.Combine(root, "np1"), two = Path.Combine(root, "np2");
        string[] Args(string dir) =>
            ["lincls", "--checkpoint", pretrained, "--epochs", "1", "--batch", "32", "--limit", "99", "--test-limit", "20", "--standardize", "true",
             "--seed", "5", "--threads", "1", "--out", dir];

        var (single, parallel) = OneProcessThenRanks(2, Args(one), Args(two));
        StringAssert.Contains(single.Out, "features standardised by their mean and std over 99 training images");
        StringAssert.Contains(parallel.Out, "features standardised by their mean and std over 99 training images", "the ranks' counts are summed");

        double lossDiff = RelativeDiff(Column(one, "loss"), Column(two, "loss"));
        using var a = Classifier(one);
        using var b = Classifier(two);
        double scale = MaxAbs(Head(a)), weightDiff = MaxDiff(Head(a), Head(b));
        TestContext.WriteLine($"lincls --standardize: np=2 vs np=1 loss rel diff {lossDiff:E1}, head (statistics folded in) max|Δw| {weightDiff:E1} (max|w| {scale:F3})");
        Assert.IsTrue(lossDiff <= 1e-5, $"loss relative difference {lossDiff:E2}");
        Assert.IsTrue(weightDiff <= 1e-4 * scale, $"head max|Δw| {weightDiff:E2}");
    }

    /// <summary>
    /// Three ranks with Mixup/CutMix: each reads its own rows and its partners' (rank 0 and 2 each other's, rank 1 its own,
    /// the middle of an odd count), 2/3 of the batch instead of all of it, and still trains like one process.
    /// </summary>
    [TestMethod]
    public void VitFineTuningWithMixingOnThreeRanksReadsItsPartnersAndTrainsLikeOneProcess()
    {
        TestData.RequireFashionMnist();
        string root = TestData.NewFolder("dp-finetune-np3-");
        string pretrained = EvalTestModels.ToolkitCheckpoint(EvalTestModels.MicroVit28, root, seed: 3);
        string one = Path.Combine(root, "np1"), three = Path.Combine(root, "np3");
        string[] Args(string dir) =>
            ["finetune", "--checkpoint", pretrained, "--max-steps", "4", "--batch", "12", "--limit", "48", "--test-limit", "12", "--lr", "1e-3",
             "--log-every", "1", "--seed", "5", "--threads", "1", "--out", Path.Combine(dir, "classifier.onnx"), "--run-dir", dir];
        var (_, parallel) = OneProcessThenRanks(3, Args(one), Args(three));
        StringAssert.Contains(parallel.Out, "4 images per rank of each global batch of 12");

        double lossDiff = RelativeDiff(Column(one, "loss"), Column(three, "loss"));
        using var a = Classifier(one);
        using var b = Classifier(three);
        using var start = CheckpointImporter.Load(pretrained, null, null);
        var (p0, pa, pb) = (Parameters(start), Parameters(a), Parameters(b));
        double scale = MaxAbs(pa), weightDiff = MaxDiff(pa, pb), trained = MaxDiff(p0, pa);
        TestContext.WriteLine($"finetune np=3 vs np=1, Mixup/CutMix on: loss rel diff {lossDiff:E1}, max|Δw| {weightDiff:E1} (max|w| {scale:F3}, training moved them by {trained:E1})");
        Assert.IsTrue(lossDiff <= 1e-4, $"loss relative difference {lossDiff:E2}");
        Assert.IsTrue(weightDiff <= 1e-3 * scale && trained > 10 * weightDiff, $"max|Δw| {weightDiff:E2}, trained {trained:E2}");
    }

    /// <summary><c>finetune --minutes</c> on 2 ranks: rank 0's timing fixes the length for both, so both stop after the same step.</summary>
    [TestMethod]
    public void FineTuningForMinutesStopsEveryRankAtTheSameStep()
    {
        TestData.RequireFashionMnist();
        string root = TestData.NewFolder("dp-finetune-minutes-");
        string pretrained = EvalTestModels.ToolkitCheckpoint(EvalTestModels.MicroVit28, root, seed: 3);
        string dir = Path.Combine(root, "np2");
        var run = MpiRun.Mocov3(MpiFlavour.OpenMpi, 2,
            ["finetune", "--checkpoint", pretrained, "--minutes", "0.05", "--batch", "8", "--limit", "32", "--test-limit", "8", "--log-every", "1",
             "--threads", "1", "--out", Path.Combine(dir, "classifier.onnx"), "--run-dir", dir]);
        Assert.AreEqual(0, run.Code, run.Err + run.Out);
        var fitted = System.Text.RegularExpressions.Regex.Match(run.Out, @"budget fits (\d+) steps");
        Assert.IsTrue(fitted.Success, run.Out);
        Assert.AreEqual(1, Lines(run.Out, "timed "), $"rank 0 alone reports the fitted length:\n{run.Out}");
        long steps = long.Parse(fitted.Groups[1].Value);
        var logged = CsvLog.ReadColumn(Path.Combine(dir, "metrics.csv"), "step");
        TestContext.WriteLine($"a 3 s budget on 2 ranks: {steps} steps");
        Assert.AreEqual(steps, (long)logged[^1], "trained to the fitted length");
        Assert.AreEqual(logged.Count, logged.Distinct().Count(), "each step logged once");
        Assert.IsTrue(File.Exists(Path.Combine(dir, "classifier.onnx")));
    }

    [TestMethod]
    public void AGlobalBatchThatDoesNotSplitOverTheRanksIsRefused()
    {
        TestData.RequireFashionMnist();
        string dir = TestData.NewFolder("dp-lincls-batch-");
        var outcome = MpiRun.Mocov3(MpiFlavour.OpenMpi, 2,
            ["lincls", "--checkpoint", Path.Combine(dir, "never-read.ckpt"), "--batch", "33", "--epochs", "1", "--out", dir, "--threads", "1"]);
        Assert.AreNotEqual(0, outcome.Code, outcome.Out);
        StringAssert.Contains(outcome.Err, "--batch 33 does not split evenly over 2 ranks");
        Assert.IsFalse(File.Exists(Path.Combine(dir, "metrics.csv")), "nothing is trained or written");
    }

    [TestMethod]
    public void SpreadSharesRowsThatDoNotSplitEvenly()
    {
        Assert.AreEqual(BatchSlice.Of(32, 1, 2), BatchSlice.Spread(32, 1, 2));
        Assert.AreEqual(new BatchSlice(0, 1, 3), BatchSlice.Spread(3, 0, 2));
        Assert.AreEqual(new BatchSlice(1, 2, 3), BatchSlice.Spread(3, 1, 2));
        Assert.AreEqual(new BatchSlice(0, 0, 2), BatchSlice.Spread(2, 0, 4));
        Assert.AreEqual(new BatchSlice(1, 1, 2), BatchSlice.Spread(2, 3, 4));
        Assert.AreEqual(51, Enumerable.Range(0, 4).Sum(r => BatchSlice.Spread(51, r, 4).Count));
        Assert.IsTrue(Enumerable.Range(1, 3).All(r => BatchSlice.Spread(51, r, 4).Offset == BatchSlice.Spread(51, r - 1, 4).Offset + BatchSlice.Spread(51, r - 1, 4).Count));
    }

    /// <summary>A slice's crops, mixing partners and drop-path masks are those of its rows in the whole batch.</summary>
    [TestMethod]
    public void ASlicesCropsMixingAndDropPathAreTheWholeBatchsForItsRows()
    {
        var preset = EvalTestModels.MicroVit28;
        var transforms = new ImageTransforms(preset, 0.2, 1.0);
        manual_seed(11);
        using var pixels = randint(0, 256, [8, 1, 28, 28]).to_type(ScalarType.Byte);
        using var labels = tensor(new long[] { 0, 1, 2, 3, 4, 5, 6, 7 });
        var whole = transforms.Train(pixels, new Random(9));
        var mixing = new MixupCutmix(mixupAlpha: 0.8, cutmixAlpha: 0, prob: 1);
        var draw = mixing.Draw(new Random(4), 28, 28);
        Assert.IsFalse(draw.CutMix);
        var wholeMixed = MixupCutmix.MixImages(whole, draw);
        var wholeTargets = MixupCutmix.MixTargets(labels, 8, 0.1, draw.Lambda);
        double maxAbs = whole.abs().max().item<float>();
        foreach (var (offset, count) in new[] { (0, 4), (4, 4), (2, 2) })
        {
            var own = transforms.Train(pixels.narrow(0, offset, count), new Random(9), (offset, 8));
            Assert.AreEqual(0.0, (own - whole.narrow(0, offset, count)).abs().max().item<float>(), 1e-6 * maxAbs, $"crops of rows {offset}+{count}");
            int mirror = 8 - offset - count;
            var mirrored = transforms.Train(pixels.narrow(0, mirror, count), new Random(9), (mirror, 8));
            var mixed = MixupCutmix.MixImages(own, draw, mirrored);
            var targets = MixupCutmix.MixTargets(labels.narrow(0, offset, count), 8, 0.1, draw.Lambda, labels.narrow(0, mirror, count));
            Assert.AreEqual(0.0, (mixed - wholeMixed.narrow(0, offset, count)).abs().max().item<float>(), 1e-6 * maxAbs, $"mixup of rows {offset}+{count}");
            Assert.AreEqual(0.0, (targets - wholeTargets.narrow(0, offset, count)).abs().max().item<float>(), 1e-7, $"targets of rows {offset}+{count}");
        }
        // Control: mixing the slice with its own mirror (a batch of its own) pairs other images.
        var alone = MixupCutmix.MixImages(transforms.Train(pixels.narrow(0, 0, 4), new Random(9), (0, 8)), draw);
        Assert.IsTrue((alone - wholeMixed.narrow(0, 0, 4)).abs().max().item<float>() > 0.1 * maxAbs);

        // Drop path: with the generator seeded alike, a slice keeps exactly the whole batch's masks of its rows.
        var dropPath = new MoCoV3.Models.DropPath(0.5);
        dropPath.train();
        using var x = ones(8, 3, 2);
        manual_seed(21);
        var wholeDropped = dropPath.forward(x);
        dropPath.Rows = (4, 8);
        manual_seed(21);
        var sliceDropped = dropPath.forward(x.narrow(0, 4, 4));
        Assert.AreEqual(0.0, (sliceDropped - wholeDropped.narrow(0, 4, 4)).abs().max().item<float>());
        var kept = wholeDropped[.., 0, 0].gt(0).sum().item<long>();
        Assert.IsTrue(kept is > 0 and < 8, $"{kept} of 8 samples kept: the masks must differ between rows for this to test anything");
        dropPath.Rows = null;
        manual_seed(21);
        Assert.IsTrue((dropPath.forward(x.narrow(0, 4, 4)) - wholeDropped.narrow(0, 4, 4)).abs().max().item<float>() > 0,
                      "control: the slice drawn as a batch of its own gets the first rows' masks");
    }

    /// <summary>
    /// Fine-tuning reads only a rank's rows when no Mixup/CutMix partner (another rank's row) is needed: its views of that
    /// slice alone equal its views taken from the whole batch; with mixing on it needs, and insists on, the whole batch.
    /// </summary>
    [TestMethod]
    public void FineTuningViewsOfARanksRowsAndItsPartnersEqualThoseOfTheWholeBatch()
    {
        var transforms = new ImageTransforms(EvalTestModels.MicroVit28, 0.2, 1.0);
        manual_seed(12);
        var slice = BatchSlice.Of(8, 1, 2);
        ImageBatch Batch(BatchSlice rows) => new(randint(0, 256, [8, 1, 28, 28]).to_type(ScalarType.Byte).narrow(0, rows.Offset, rows.Count).contiguous(),
            arange(8L).narrow(0, rows.Offset, rows.Count).contiguous(), 0, 0, Enumerable.Range(rows.Offset, rows.Count).ToArray(), rows: rows);
        manual_seed(13);
        using var whole = Batch(BatchSlice.Whole(8));
        manual_seed(13);
        using var own = Batch(slice);
        CollectionAssert.AreEqual(whole.Pixels.narrow(0, 4, 4).data<byte>().ToArray(), own.Pixels.data<byte>().ToArray());

        var unmixed = new FineTuneViews(transforms, new MixupCutmix(prob: 0, smoothing: 0.1), slice, 5, 8, CPU, perRankDraws: false);
        Assert.IsNull(unmixed.PartnerRows, "no partners without mixing");
        var (fromWhole, targetsFromWhole) = unmixed.For(whole, step: 3);
        var (fromOwn, targetsFromOwn) = unmixed.For(own, step: 3);
        Assert.AreEqual(4L, fromOwn.shape[0]);
        Assert.IsTrue(fromWhole.abs().max().item<float>() > 0.1f);
        Assert.AreEqual(0.0, (fromOwn - fromWhole).abs().max().item<float>(), "images");
        Assert.AreEqual(0.0, (targetsFromOwn - targetsFromWhole).abs().max().item<float>(), "targets");
        Assert.AreEqual(4L, targetsFromOwn.argmax(1).min().item<long>(), "rows 4..7's labels");
        var (otherStep, _) = unmixed.For(own, step: 4);
        Assert.IsTrue((otherStep - fromOwn).abs().max().item<float>() > 0.1f, "control: another step crops otherwise");

        // Mixup/CutMix: the partners of rows 4..7 are rows 0..3 (mirrored), read beside the rank's own rows.
        var mixed = new FineTuneViews(transforms, new MixupCutmix(mixupAlpha: 0.8, cutmixAlpha: 1.0, prob: 1, smoothing: 0.1), slice, 5, 8, CPU, perRankDraws: false);
        Assert.AreEqual(new BatchSlice(0, 4, 8), mixed.PartnerRows, "Mixup/CutMix partners are the mirrored rows, another rank's");
        manual_seed(13);
        using var partners = Batch(new BatchSlice(0, 4, 8));
        var (mixedWhole, mixedTargetsWhole) = mixed.For(whole, step: 3);
        var (mixedOwn, mixedTargetsOwn) = mixed.For(own, step: 3, partners);
        Assert.AreEqual(0.0, (mixedOwn - mixedWhole).abs().max().item<float>(), "mixed images from own + partner rows = from the whole batch");
        Assert.AreEqual(0.0, (mixedTargetsOwn - mixedTargetsWhole).abs().max().item<float>(), "mixed targets");
        // Smoothing alone leaves 0.1 / 8 off the label; a mixed target also weighs its partner's label.
        Assert.IsTrue(mixedTargetsOwn.topk(2, dim: 1).values.select(1, 1).max().item<float>() > 0.05f, "the targets are mixed");
        var e = Assert.ThrowsExactly<ArgumentException>(() => mixed.For(own, step: 3));
        StringAssert.Contains(e.Message, "need their partners, rows 0..4 of 8");
        var wrong = Assert.ThrowsExactly<ArgumentException>(() => mixed.For(own, step: 3, own));
        StringAssert.Contains(wrong.Message, "not 4..8 of 8");
    }

    /// <summary>The command in one process, then the same command (its own output folder) on <paramref name="ranks"/> Open MPI ranks; both must succeed.</summary>
    private static (MpiRun.Outcome Single, MpiRun.Outcome Parallel) OneProcessThenRanks(int ranks, string[] single, string[] parallel)
    {
        var one = MpiRun.Mocov3(null, 1, single);
        Assert.AreEqual(0, one.Code, one.Err + one.Out);
        var many = MpiRun.Mocov3(MpiFlavour.OpenMpi, ranks, parallel);
        Assert.AreEqual(0, many.Code, many.Err + many.Out);
        return (one, many);
    }

    /// <summary>A linear-eval classifier's head.</summary>
    private static (string Name, Tensor Value)[] Head(ImportedBackbone m) => [("head.weight", m.Head!.Weight), ("head.bias", m.Head!.Bias!)];

    private static int Lines(string output, string start) =>
        output.Split('\n').Count(l => l.TrimStart().StartsWith(start, StringComparison.Ordinal));

    private static List<double> Column(string dir, string column) => CsvLog.ReadColumn(Path.Combine(dir, "metrics.csv"), column);

    private static double RelativeDiff(IReadOnlyList<double> reference, IReadOnlyList<double> other)
    {
        Assert.AreEqual(reference.Count, other.Count, "as many logged losses");
        return reference.Zip(other).Max(p => Math.Abs(p.Second - p.First) / Math.Abs(p.First));
    }

    private static ImportedBackbone Classifier(string dir) =>
        CheckpointImporter.Load(Path.Combine(dir, ClassifierCheckpoint.DefaultName), null, PresetCatalog.Load(Path.Combine(dir, ClassifierCheckpoint.PresetName)));

    private static (string Name, Tensor Value)[] Tensors(ImportedBackbone m) => [.. m.Backbone.state_dict().Select(kv => (kv.Key, kv.Value))];

    /// <summary>Backbone parameters and the head (when the checkpoint has one).</summary>
    private static (string Name, Tensor Value)[] Parameters(ImportedBackbone m) =>
        [.. m.Backbone.named_parameters().Select(p => (p.name, (Tensor)p.parameter)),
         .. m.Head is { } h ? new[] { ("head.weight", h.Weight), ("head.bias", h.Bias!) } : []];

    private static (string Name, Tensor Value)[] Buffers(ImportedBackbone m) =>
        [.. m.Backbone.named_buffers().Where(b => b.buffer.is_floating_point()).Select(b => (b.name, b.buffer))];

    private static double MaxAbs(IEnumerable<(string Name, Tensor Value)> tensors) =>
        tensors.Max(t => t.Value.abs().max().to_type(ScalarType.Float64).item<double>());

    private static double L2Diff(IEnumerable<(string Name, Tensor Value)> a, IEnumerable<(string Name, Tensor Value)> b)
    {
        var other = b.ToDictionary(t => t.Name, t => t.Value);
        return Math.Sqrt(a.Sum(t => (t.Value.to_type(ScalarType.Float64) - other[t.Name].to_type(ScalarType.Float64)).square().sum().item<double>()));
    }

    private static string Worst(IEnumerable<(string Name, Tensor Value)> a, IEnumerable<(string Name, Tensor Value)> b)
    {
        var other = b.ToDictionary(t => t.Name, t => t.Value);
        return a.MaxBy(t => (t.Value.to_type(ScalarType.Float64) - other[t.Name].to_type(ScalarType.Float64)).abs().max().item<double>()).Name;
    }

    private static double MaxDiff(IEnumerable<(string Name, Tensor Value)> a, IEnumerable<(string Name, Tensor Value)> b)
    {
        var other = b.ToDictionary(t => t.Name, t => t.Value);
        return a.Max(t => (t.Value.to_type(ScalarType.Float64) - other[t.Name].to_type(ScalarType.Float64)).abs().max().item<double>());
    }
}
