using MoCoV3.Training;

namespace MoCoV3.Tests.Training;

/// <summary>Which steps log, evaluate kNN and save: the schedule the pretraining loop follows.</summary>
[TestClass]
public sealed class StepPolicyTests
{
    [TestMethod]
    public void LogsKnnAndSavesOnTheirOwnSchedules()
    {
        var policy = new StepPolicy(logEvery: 10, knnEvery: 25, saveEvery: null, stepsPerEpoch: 30);
        var steps = Enumerable.Range(1, 64).Select(s => (Step: (long)s, Actions: policy.After(s, totalSteps: 64))).ToList();
        CollectionAssert.AreEqual(new long[] { 1, 10, 20, 25, 30, 40, 50, 60, 64 }, steps.Where(s => s.Actions.Log).Select(s => s.Step).ToList());
        CollectionAssert.AreEqual(new long[] { 25, 50, 64 }, steps.Where(s => s.Actions.Knn).Select(s => s.Step).ToList());
        CollectionAssert.AreEqual(new long[] { 30, 60, 64 }, steps.Where(s => s.Actions.Save).Select(s => s.Step).ToList());
        CollectionAssert.AreEqual(new long[] { 64 }, steps.Where(s => s.Actions.Last).Select(s => s.Step).ToList());
    }

    [TestMethod]
    public void SaveEveryReplacesTheEpochCheckpointAndNoKnnWithoutMonitor()
    {
        var policy = StepPolicy.For(new PretrainOptions { OutputDir = "unused", SaveEvery = 7, KnnEvery = 5, LogEvery = 100 }, knn: false, stepsPerEpoch: 10);
        var steps = Enumerable.Range(1, 20).Select(s => (Step: (long)s, Actions: policy.After(s, totalSteps: 20))).ToList();
        CollectionAssert.AreEqual(new long[] { 7, 14, 20 }, steps.Where(s => s.Actions.Save).Select(s => s.Step).ToList());
        Assert.IsFalse(steps.Any(s => s.Actions.Knn));
        CollectionAssert.AreEqual(new long[] { 1, 20 }, steps.Where(s => s.Actions.Log).Select(s => s.Step).ToList());
    }
}
