using MoCoV3.Evaluation;
using MoCoV3.Models;
using MoCoV3.Training;

namespace MoCoV3.Tests.Training;

/// <summary><c>--knn-every</c>: kNN accuracy logged during pretraining without changing the run.</summary>
[TestClass]
public sealed class KnnMonitorTests
{
    public TestContext TestContext { get; set; } = null!;

    private static ModelPreset TinyFmnistVit => PresetCatalog.Get("vit-tiny-fmnist")
        .WithVit(vit => vit with { EmbedDim = 32, Depth = 1, Heads = 2 })
        .WithHeads(heads => heads with { HiddenDim = 64, OutDim = 32 }) with
    {
        Name = "vit-fmnist-knn-test",
    };

    [TestMethod]
    public void KnnEveryLogsAccuracyAndLeavesTheTrainingUnchanged()
    {
        TestData.RequireFashionMnist();
        PretrainOptions Options(string dir) => new()
        {
            OutputDir = dir, Data = new() { Limit = 256 }, Batch = 32, MaxSteps = 7, Lr = 1e-3, LogEvery = 1, Seed = 3, TensorBoard = false,
        };
        string plain = TestData.NewFolder();
        new Pretrainer().Run(TinyFmnistVit, Options(plain));

        string monitored = TestData.NewFolder();
        var trainer = new Pretrainer();
        var evaluations = new List<KnnEvaluation>();
        trainer.KnnEvaluated += evaluations.Add;
        trainer.Run(TinyFmnistVit, Options(monitored) with { KnnEvery = 3, KnnTrain = 600, KnnTest = 200 });

        // Every 3 steps and at the end (step 7), each on the fixed subsets.
        CollectionAssert.AreEqual(new long[] { 3, 6, 7 }, evaluations.Select(e => e.Step).ToArray());
        foreach (var e in evaluations)
        {
            TestContext.WriteLine($"step {e.Step}: top1 {e.Result.Top1:F4} top5 {e.Result.Top5:F4} in {e.Seconds:F2}s");
            Assert.AreEqual((600, 200, 20), (e.Result.Train, e.Result.Test, e.Result.K));
            // Even a barely trained ViT is far above chance (0.1) on Fashion-MNIST with kNN.
            Assert.IsTrue(e.Result.Top1 is > 0.3 and <= 1, $"top1 {e.Result.Top1}");
            Assert.IsTrue(e.Result.Top5 >= e.Result.Top1 && e.Result.Top5 <= 1, $"top5 {e.Result.Top5}");
        }

        var a = MetricsLog.Read(Path.Combine(plain, "metrics.csv"));
        var b = MetricsLog.Read(Path.Combine(monitored, "metrics.csv"));
        CollectionAssert.AreEqual(a.Select(r => r.Step).ToList(), b.Select(r => r.Step).ToList());
        for (int i = 0; i < a.Count; i++)
        {
            Assert.AreEqual(a[i].Loss, b[i].Loss, 0, $"loss at step {a[i].Step}");
            Assert.AreEqual(a[i].GradNorm, b[i].GradNorm, 0, $"grad norm at step {a[i].Step}");
            Assert.IsNull(a[i].KnnTop1);
            double? expected = evaluations.SingleOrDefault(e => e.Step == b[i].Step)?.Result.Top1;
            Assert.AreEqual(expected, b[i].KnnTop1, $"knn_top1 at step {b[i].Step}");
        }
        var header = File.ReadLines(Path.Combine(monitored, "metrics.csv")).First();
        Assert.AreEqual("step,epoch,loss,lr,momentum,grad_norm,img_per_s,elapsed_s,knn_top1,grad_norm_first,grad_norm_last,warnings", header);
    }

    [TestMethod]
    public void MetricsWrittenBeforeTheKnnColumnStillLoadAndResume()
    {
        string dir = TestData.NewFolder();
        string path = Path.Combine(dir, "metrics.csv");
        File.WriteAllText(path, """
            step,epoch,loss,lr,momentum,grad_norm,img_per_s,elapsed_s
            1,0.5,3.5,0.001,0.99,2.5,100,1.5
            2,1,3.25,0.002,0.995,2,110,3
            """);
        var rows = MetricsLog.Read(path);
        Assert.AreEqual(2, rows.Count);
        Assert.AreEqual(3.25, rows[1].Loss);
        Assert.IsNull(rows[1].KnnTop1);

        // Resuming at step 1 keeps row 1, rewritten with the new column, and appends new rows.
        using (var log = new MetricsLog(path, resumeStep: 1))
            log.Write(new MetricsRow { Step = 2, Epoch = 1, Loss = 3, Lr = 0.002, Momentum = 0.995, GradNorm = 1, ImgPerS = 1, ElapsedS = 4, KnnTop1 = 0.625 });
        rows = MetricsLog.Read(path);
        CollectionAssert.AreEqual(new long[] { 1, 2 }, rows.Select(r => r.Step).ToArray());
        Assert.AreEqual(3.5, rows[0].Loss);
        Assert.IsNull(rows[0].KnnTop1);
        Assert.AreEqual(0.625, rows[1].KnnTop1);
    }
}
