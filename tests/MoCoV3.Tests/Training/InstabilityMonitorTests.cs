using MoCoV3.Models;
using MoCoV3.Training;

namespace MoCoV3.Tests.Training;

[TestClass]
public sealed class InstabilityMonitorTests
{
    private static MetricsRow Row(long step, double grad, double? knn = null) =>
        new() { Step = step, Loss = 3, GradNorm = grad, GradNormFirst = grad / 10, GradNormLast = grad / 100, KnnTop1 = knn };

    [TestMethod]
    public void ASpikeIsAValueAboveFactorTimesTheRunningMedian()
    {
        var monitor = new InstabilityMonitor(5, "blocks.0", "blocks.11");
        double[] grads = [1, 2, 3, 2, 1];
        for (int i = 0; i < grads.Length; i++) Assert.IsEmpty(monitor.Observe(Row(i + 1, grads[i])), $"row {i + 1}: too little history");
        Assert.IsEmpty(monitor.Observe(Row(6, 9.9)), "9.9 is under 5 x the median 2");
        var warnings = monitor.Observe(Row(7, 10.8)); // median of 1,2,3,2,1,9.9 = 2
        CollectionAssert.AreEqual(new[] { "grad_spike", "grad_spike_first", "grad_spike_last" }, warnings.Select(w => w.Kind).ToArray());
        Assert.AreEqual(2, warnings[0].Reference);
        Assert.AreEqual("step 7: gradient norm of the first layer (blocks.0) spiked to 1.08, 5.4× its running median 0.2", warnings[1].Message);
    }

    [TestMethod]
    public void AKnnDipIsADropOfMoreThanFivePointsBelowTheBest()
    {
        var monitor = new InstabilityMonitor(5, "a", "b");
        Assert.IsEmpty(monitor.Observe(Row(100, 1, 0.60)));
        Assert.IsEmpty(monitor.Observe(Row(200, 1, 0.70)));
        Assert.IsEmpty(monitor.Observe(Row(300, 1, 0.66)), "4 points is noise");
        var dip = monitor.Observe(Row(400, 1, 0.62)).Single();
        Assert.AreEqual("knn_dip", dip.Kind);
        Assert.AreEqual("step 400: kNN top-1 dipped to 0.6200, 8.0 points below the best 0.7000 (step 200)", dip.Message);
    }

    [TestMethod]
    public void SeedingWithTheLoggedRowsRestoresTheState()
    {
        var rows = Enumerable.Range(1, 30).Select(i => Row(i, 1 + i % 3)).ToList();
        var straight = new InstabilityMonitor(5, "a", "b");
        foreach (var row in rows) straight.Observe(row);
        var resumed = new InstabilityMonitor(5, "a", "b");
        resumed.Seed(rows);
        var spike = Row(31, 12.5); // 5 x the median 2 = 10
        CollectionAssert.AreEqual(straight.Observe(spike).ToList(), resumed.Observe(spike).ToList());
        var fresh = new InstabilityMonitor(5, "a", "b");
        Assert.IsEmpty(fresh.Observe(spike), "without the history nothing is a spike");
    }

    [TestMethod]
    public void WatchedLayersAreTheFirstTrainedLayerAndTheLastBlock()
    {
        var vit = WatchedLayers.Of(new VisionTransformer(TestPresets.MicroVit));
        Assert.AreEqual("blocks.0", vit.FirstName, "the patch projection is frozen, so the first block is watched");
        Assert.AreEqual("blocks.1", vit.LastName);
        Assert.AreEqual(12, vit.First.Count); // 2 LayerNorms, qkv, proj, fc1, fc2: weight and bias each
        var resnet = WatchedLayers.Of(new ResNet(PresetCatalog.Get("resnet18-fmnist")));
        Assert.AreEqual("conv1+bn1", resnet.FirstName);
        Assert.AreEqual("layer4.1", resnet.LastName);
        Assert.AreEqual(3, resnet.First.Count); // conv1 weight, bn1 weight and bias
    }
}
