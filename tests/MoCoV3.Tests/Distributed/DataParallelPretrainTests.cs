using MoCoV3.Checkpoints;
using MoCoV3.Distributed;
using MoCoV3.Method;
using MoCoV3.Models;
using MoCoV3.Training;
using MoCoV3.Tests.Data;
using SkiaSharp;
using static MoCoV3.Tests.Distributed.RunWeights;
using static TorchSharp.torch;

namespace MoCoV3.Tests.Distributed;

/// <summary>
/// Data-parallel pretraining end to end (tests/MpiHost pretrain: a micro vit-tiny-fmnist or resnet18-fmnist, full
/// augmentation, lr &gt; 0, clipping, 8 steps, one thread): 2 ranks at global batch 32 train like one process at batch 32 —
/// same per-step losses, same final weights — and a control with per-rank BatchNorm differs, so the comparison can fail.
/// </summary>
[TestClass]
public sealed class DataParallelPretrainTests
{
    public TestContext TestContext { get; set; } = null!;

    private const string Batch = "32";

    /// <summary>AdamW, lr 1e-3; BatchNorm1d in the heads only.</summary>
    [TestMethod]
    public void VitTwoRanksAtGlobalBatch32TrainLikeOneProcessAtBatch32() => TwoRanksTrainLikeOneProcess("vit", "1e-3");

    /// <summary>LARS, lr 0.05; BatchNorm2d in the backbone (every block and downsample) as well as the heads' BatchNorm1d.</summary>
    [TestMethod]
    public void ResNetTwoRanksAtGlobalBatch32TrainLikeOneProcessAtBatch32() => TwoRanksTrainLikeOneProcess("resnet", "0.05");

    /// <summary>
    /// An image folder of JPEGs (48 of different sizes): each rank reads, decodes and cuts the views of its own rows of every
    /// global batch alone, and the two ranks still train like one process.
    /// </summary>
    [TestMethod]
    public void VitTwoRanksOnAJpegFolderTrainLikeOneProcess()
    {
        string data = TestData.NewFolder("jpegs-");
        for (int i = 0; i < 48; i++)
        {
            string folder = Path.Combine(data, i % 2 == 0 ? "cats" : "dogs");
            Directory.CreateDirectory(folder);
            TestFiles.WritePhotoLike(Path.Combine(folder, $"{i:D2}.jpg"), 40 + 3 * i, 30 + 2 * i, seed: i, SKEncodedImageFormat.Jpeg);
        }
        TwoRanksTrainLikeOneProcess("vit", "1e-3", data);
    }

    private void TwoRanksTrainLikeOneProcess(string arch, string lr, string? data = null)
    {
        if (data is null) TestData.RequireFashionMnist();
        string[] dataArgs = data is null ? [] : [data];
        string one = TestData.NewFolder("np1-"), two = TestData.NewFolder("np2-"), control = TestData.NewFolder("np2-local-bn-");
        Assert.AreEqual(8L, MpiHostRun.Scenario("pretrain", 1, [one, Batch, "sync", lr, arch, .. dataArgs]).Single().GetProperty("steps").GetInt64());
        Assert.IsTrue(MpiHostRun.Scenario("pretrain", 2, [two, Batch, "sync", lr, arch, .. dataArgs]).All(r => r.GetProperty("steps").GetInt64() == 8));
        MpiHostRun.Scenario("pretrain", 2, [control, Batch, "local", lr, arch, .. dataArgs]);

        var reference = MetricsLog.Read(Path.Combine(one, "metrics.csv"));
        var parallel = MetricsLog.Read(Path.Combine(two, "metrics.csv"));
        var perRankBn = MetricsLog.Read(Path.Combine(control, "metrics.csv"));
        Assert.AreEqual(8, reference.Count);
        CollectionAssert.AreEqual(reference.Select(r => r.Step).ToList(), parallel.Select(r => r.Step).ToList(), "rank 0 alone logs every step once");
        Assert.IsTrue(reference.All(r => r.Lr > 0));
        double lossDiff = reference.Zip(parallel).Max(p => Math.Abs(p.Second.Loss - p.First.Loss) / p.First.Loss);
        double controlLossDiff = reference.Zip(perRankBn).Max(p => Math.Abs(p.Second.Loss - p.First.Loss) / p.First.Loss);
        double gradNormDiff = reference.Zip(parallel).Max(p => Math.Abs(p.Second.GradNorm - p.First.GradNorm) / p.First.GradNorm);

        var preset = CheckpointFile.ReadHeader(Path.Combine(one, CheckpointFile.DefaultName)).Preset;
        using var start = Initial(preset, seed: 3);
        using var a = Load(one);
        using var b = Load(two);
        using var c = Load(control);
        double scale = MaxAbs(a, Parameters), weightDiff = MaxDiff(a, b, Parameters), controlWeightDiff = MaxDiff(a, c, Parameters);
        double trained = MaxDiff(a, start, Parameters);
        double bufferScale = MaxAbs(a, Buffers), bufferDiff = MaxDiff(a, b, Buffers); // BatchNorm running statistics
        TestContext.WriteLine($"{arch}{(data is null ? "" : " on JPEGs")}: loss {reference[0].Loss:F4} -> {reference[^1].Loss:F4}; np=2 vs np=1: loss rel diff {lossDiff:E1}, grad norm rel diff " +
                              $"{gradNormDiff:E1}, parameters max|Δw| {weightDiff:E1} (in {Worst(a, b, Parameters)}, max|w| {scale:F3}, training moved them by {trained:E1}), " +
                              $"buffers max|Δ| {bufferDiff:E1} (max {bufferScale:F3}); per-rank BatchNorm: loss rel diff {controlLossDiff:E1}, max|Δw| {controlWeightDiff:E1}");

        Assert.IsTrue(lossDiff <= 1e-4, $"per-step loss relative difference {lossDiff:E2}");
        Assert.IsTrue(gradNormDiff <= 1e-4, $"gradient norm relative difference {gradNormDiff:E2}");
        Assert.IsTrue(weightDiff <= 1e-3 * scale, $"max|Δw| {weightDiff:E2} > 1e-3 · {scale:F3}");
        Assert.IsTrue(bufferDiff <= 1e-3 * bufferScale, $"running statistics max|Δ| {bufferDiff:E2} > 1e-3 · {bufferScale:F3}");
        // On these JPEGs AdamW's rounding noise (an update of ±lr where a gradient is near 0 and its sign follows the summation
        // order) is a seventh of what 8 steps move the weights by; the losses above compare the two runs there.
        if (data is null) Assert.IsTrue(trained > 10 * weightDiff, $"training moved the weights by {trained:E2} only");
        Assert.IsTrue(controlLossDiff > 1e-3, $"per-rank BatchNorm must give other losses: {controlLossDiff:E2}");
        Assert.IsTrue(controlWeightDiff > 10 * weightDiff, $"per-rank BatchNorm must give other weights: {controlWeightDiff:E2} vs {weightDiff:E2}");
    }

    /// <summary>
    /// <c>--amp</c>: every matrix product in bf16, on one rank and on two. The first step's loss is the same forward pass on
    /// both (the ViT's to 1e-7: its heads' SyncBatchNorm normalises in fp32 and returns bf16, as libtorch's own batch norm
    /// does; the ResNet's BatchNorm in every block rounds to bf16 after statistics summed in another order, 6e-4 measured),
    /// far closer than per-rank BatchNorm. Later steps cannot match as closely as in fp32: each rank's weight gradients are
    /// bf16 products over its own rows, and AdamW turns their rounding into full-size steps in near-zero coordinates. Over
    /// the 8 steps the two runs must stay within the difference bf16 itself makes (amp against fp32 in one process).
    /// </summary>
    [TestMethod]
    [DataRow("vit", "1e-3")]
    [DataRow("resnet", "0.05")]
    public void UnderAmpTwoRanksTrainLikeOneProcess(string arch, string lr)
    {
        TestData.RequireFashionMnist();
        string one = TestData.NewFolder("amp-np1-"), two = TestData.NewFolder("amp-np2-"), control = TestData.NewFolder("amp-np2-local-bn-"),
               fp32 = TestData.NewFolder("fp32-np1-");
        MpiHostRun.Scenario("pretrain", 1, one, Batch, "sync", lr, arch, "amp");
        MpiHostRun.Scenario("pretrain", 2, two, Batch, "sync", lr, arch, "amp");
        MpiHostRun.Scenario("pretrain", 2, control, Batch, "local", lr, arch, "amp");
        MpiHostRun.Scenario("pretrain", 1, fp32, Batch, "sync", lr, arch);

        var reference = MetricsLog.Read(Path.Combine(one, "metrics.csv"));
        Assert.AreEqual(8, reference.Count);
        double[] Diffs(string dir) => [.. reference.Zip(MetricsLog.Read(Path.Combine(dir, "metrics.csv"))).Select(p => Math.Abs(p.Second.Loss - p.First.Loss) / p.First.Loss)];
        double[] parallel = Diffs(two), perRankBn = Diffs(control), amp = Diffs(fp32);
        TestContext.WriteLine($"{arch} --amp: loss {reference[0].Loss:F4} -> {reference[^1].Loss:F4}; loss relative differences, step 1 / mean of 8: " +
                              $"np=2 vs np=1 {parallel[0]:E1} / {parallel.Average():E1}; per-rank BatchNorm {perRankBn[0]:E1} / {perRankBn.Average():E1}; " +
                              $"amp vs fp32 (np=1) {amp[0]:E1} / {amp.Average():E1}");

        Assert.IsTrue(parallel[0] <= 2e-3, $"step 1: loss relative difference {parallel[0]:E2}");
        Assert.IsTrue(parallel[0] * 10 <= perRankBn[0], $"step 1: per-rank BatchNorm ({perRankBn[0]:E2}) must differ far more than two ranks ({parallel[0]:E2})");
        if (arch == "vit")
            Assert.IsTrue(parallel[0] * 100 <= amp[0], $"step 1: two ranks ({parallel[0]:E2}) must be far closer than amp to fp32 ({amp[0]:E2}): the heads run in bf16 on both");
        Assert.IsTrue(parallel.Average() <= 2 * amp.Average(), $"8 steps: two ranks ({parallel.Average():E2}) must stay within bf16's own difference ({amp.Average():E2})");
        Assert.IsTrue(parallel.Average() * 3 <= perRankBn.Average(), $"8 steps: per-rank BatchNorm ({perRankBn.Average():E2}) must differ more than two ranks ({parallel.Average():E2})");
    }

    /// <summary>
    /// <c>--minutes</c>: rank 0 times the steps and every rank takes its length, so both ranks stop after the same step
    /// (each timing its own steps could fix different lengths and leave a rank waiting in a collective).
    /// </summary>
    [TestMethod]
    public void AMinutesBudgetIsFixedByRankZeroForEveryRank()
    {
        TestData.RequireFashionMnist();
        string dir = TestData.NewFolder("minutes-np2-");
        var reports = MpiHostRun.Scenario("pretrain", 2, dir, Batch, "sync", "1e-3", "vit", "minutes=0.05");
        long steps = reports[0].GetProperty("steps").GetInt64();
        TestContext.WriteLine($"a 3 s budget on 2 ranks: {steps} steps");
        Assert.AreEqual(steps, reports[1].GetProperty("steps").GetInt64(), "both ranks train the same number of steps");
        Assert.IsTrue(steps > TimeBudget.WarmupSteps + TimeBudget.MinTimedSteps, $"the budget holds more than the timed steps: {steps}");
        var header = CheckpointFile.ReadHeader(Path.Combine(dir, CheckpointFile.DefaultName));
        Assert.AreEqual(steps, header.Step);
        Assert.AreEqual(steps, header.Plan.TotalSteps, "the checkpoint holds the fitted length");
        Assert.AreEqual(steps, MetricsLog.Read(Path.Combine(dir, "metrics.csv")).Count, "rank 0 logs every step once");
    }

    [TestMethod]
    public void AGlobalBatchThatDoesNotSplitOverTheRanksIsRefused()
    {
        TestData.RequireFashionMnist();
        string dir = TestData.NewFolder();
        var outcome = MpiRun.Mocov3(MpiFlavour.OpenMpi, 2,
            ["pretrain", "--preset", "vit-tiny-fmnist", "--batch", "33", "--limit", "256", "--max-steps", "1", "--out", dir, "--threads", "1"]);
        Assert.AreNotEqual(0, outcome.Code, outcome.Out);
        StringAssert.Contains(outcome.Err, "--batch 33 does not split evenly over 2 ranks");
        StringAssert.Contains(outcome.Err, "use a multiple of 2 (e.g. 32 or 34)");
        Assert.IsFalse(File.Exists(Path.Combine(dir, "metrics.csv")), "nothing is trained or written");
    }

    [TestMethod]
    public void SyncBatchNormOfOneRankIsBatchNorm2dWithItsRunningStatistics()
    {
        using var world = new SingleProcessCommunicator();
        manual_seed(4);
        var reference = nn.BatchNorm2d(3);
        var synced = nn.BatchNorm2d(3);
        using (no_grad())
            foreach (var bn in new[] { reference, synced })
            {
                bn.weight!.copy_(tensor(new[] { 0.5f, 1.5f, 2f }));
                bn.bias!.copy_(tensor(new[] { 0.1f, -0.2f, 0.3f }));
            }
        var x = randn(4, 3, 5, 5) * 3 + 1;
        var expected = reference.forward(x);
        var actual = SyncBatchNorm.Forward(synced, x, world);
        Assert.IsTrue((actual - expected).abs().max().item<float>() < 1e-5f);
        Assert.IsTrue((synced.running_mean! - reference.running_mean!).abs().max().item<float>() < 1e-6f);
        Assert.IsTrue((synced.running_var! - reference.running_var!).abs().max().item<float>() < 1e-5f);
        Assert.IsTrue(reference.running_var!.sub(1).abs().max().item<float>() > 0.1f, "the running variance moved");
        Assert.AreEqual(1L, synced.num_batches_tracked!.item<long>());
    }

    /// <summary>A bf16 input (under --amp) is normalised in fp32 and comes back in bf16, as libtorch's own batch norm does.</summary>
    [TestMethod]
    public void SyncBatchNormOfABFloat16InputIsBatchNormsInBFloat16()
    {
        using var world = new SingleProcessCommunicator();
        manual_seed(5);
        var reference = nn.BatchNorm1d(6);
        var synced = nn.BatchNorm1d(6);
        var x = (randn(16, 6) * 3 + 1).to_type(ScalarType.BFloat16);
        var expected = reference.forward(x);
        var actual = SyncBatchNorm.Forward(synced, x, world);
        Assert.AreEqual(expected.dtype, actual.dtype);
        Assert.AreEqual(ScalarType.BFloat16, actual.dtype);
        Assert.AreEqual(ScalarType.Float32, synced.running_mean!.dtype);
        // Both round an fp32 result to bf16 (8 significant bits): at most one bf16 step apart.
        double maxDiff = (actual.to_type(ScalarType.Float32) - expected.to_type(ScalarType.Float32)).abs().max().item<float>();
        Assert.IsTrue(maxDiff <= 2.0 / 128, $"max difference {maxDiff}");
        Assert.IsTrue((synced.running_mean! - reference.running_mean!).abs().max().item<float>() < 1e-5f);
        Assert.IsTrue((synced.running_var! - reference.running_var!).abs().max().item<float>() < 1e-4f);
    }

    [TestMethod]
    public void EachRankTakesItsContiguousSliceOfTheGlobalBatch()
    {
        Assert.AreEqual(new BatchSlice(0, 32, 32), BatchSlice.Of(32, 0, 1));
        Assert.AreEqual(new BatchSlice(0, 16, 32), BatchSlice.Of(32, 0, 2));
        Assert.AreEqual(new BatchSlice(16, 16, 32), BatchSlice.Of(32, 1, 2));
        Assert.AreEqual(new BatchSlice(24, 8, 32), BatchSlice.Of(32, 3, 4));
        Assert.IsTrue(BatchSlice.Of(32, 0, 1).IsWhole);
        Assert.IsFalse(BatchSlice.Of(32, 0, 2).IsWhole);
        var e = Assert.ThrowsExactly<ArgumentException>(() => BatchSlice.Of(30, 1, 4));
        StringAssert.Contains(e.Message, "--batch 30 does not split evenly over 4 ranks");
    }

    [TestMethod]
    public void ASlicesViewsAreTheWholeBatchsViewsOfItsRows()
    {
        // A 3-channel preset, so every jitter (hue, saturation, grayscale), blur and solarize path runs.
        var preset = TestPresets.Get("vit-small").WithInput(input => input with { ImageSize = 32 });
        var augmentation = MoCoV3.Augment.MoCoAugmentation.FromPreset(preset);
        manual_seed(11);
        using var pixels = randint(0, 256, [8, 3, 40, 40]).to_type(ScalarType.Byte);
        var (whole1, whole2) = augmentation.TwoViews(pixels, seed: 5, step: 7);
        double maxAbs = whole1.abs().max().item<float>();
        foreach (var (offset, count) in new[] { (0, 4), (4, 4), (2, 2) })
        {
            var (v1, v2) = augmentation.TwoViews(pixels.narrow(0, offset, count), seed: 5, step: 7, rows: (offset, 8));
            Assert.AreEqual(0.0, (v1 - whole1.narrow(0, offset, count)).abs().max().item<float>(), 1e-6 * maxAbs, $"view 1, rows {offset}+{count}");
            Assert.AreEqual(0.0, (v2 - whole2.narrow(0, offset, count)).abs().max().item<float>(), 1e-6 * maxAbs, $"view 2, rows {offset}+{count}");
        }
        // Views cropped on the host (image files): the colour part of a slice is the whole batch's too.
        using var cropped = randint(0, 256, [8, 3, 32, 32]).to_type(ScalarType.Byte);
        var (crop1, crop2) = augmentation.TwoCroppedViews(cropped, cropped, seed: 5, step: 7);
        var (slice1, slice2) = augmentation.TwoCroppedViews(cropped.narrow(0, 4, 4), cropped.narrow(0, 4, 4), seed: 5, step: 7, rows: (4, 8));
        Assert.AreEqual(0.0, (slice1 - crop1.narrow(0, 4, 4)).abs().max().item<float>(), 1e-6 * maxAbs, "cropped view 1");
        Assert.AreEqual(0.0, (slice2 - crop2.narrow(0, 4, 4)).abs().max().item<float>(), 1e-6 * maxAbs, "cropped view 2");
        // Control: the slice augmented as a batch of its own draws other parameters.
        var (own, _) = augmentation.TwoViews(pixels.narrow(0, 4, 4), seed: 5, step: 7);
        Assert.IsTrue((own - whole1.narrow(0, 4, 4)).abs().max().item<float>() > 0.1 * maxAbs);
        Assert.ThrowsExactly<ArgumentException>(() => augmentation.TwoViews(pixels.narrow(0, 0, 4), seed: 5, step: 7, rows: (6, 8)));
    }

    private static MoCo Initial(ModelPreset preset, long seed)
    {
        manual_seed(seed);
        return new MoCo(preset, BackboneFactory.Create);
    }
}
