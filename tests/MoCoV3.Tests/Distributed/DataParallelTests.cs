using System.Text.Json;

namespace MoCoV3.Tests.Distributed;

/// <summary>
/// The training side of data parallelism, at 1 and 2 ranks (global batch 8, rank r takes rows [rN, (r+1)N)), against the
/// one-process computation on the whole batch that every rank also runs (tests/MpiHost). Each has a control without the
/// cross-rank part, which must differ at 2 ranks, so the comparison can fail.
/// </summary>
[TestClass]
public sealed class DataParallelTests
{
    private static double Number(JsonElement report, string name) => report.GetProperty(name).GetDouble();

    [TestMethod]
    [DataRow(1)]
    [DataRow(2)]
    public void AveragedGradientsEqualTheWholeBatchsGradients(int ranks)
    {
        foreach (var report in MpiHostRun.Scenario("gradients", ranks))
        {
            Assert.IsTrue(report.GetProperty("inBuffer").GetBoolean(), "backward accumulates into the flat buffer");
            Assert.IsTrue(report.GetProperty("inBufferAfterReplace").GetBoolean(), "a replaced gradient is pointed back at the buffer");
            Assert.IsTrue(Number(report, "maxAbs") > 0.1, report.ToString());
            Assert.IsTrue(Number(report, "maxDiff") <= 1e-12 * Number(report, "maxAbs"), report.ToString());
            Assert.IsTrue(Number(report, "maxDiffReplaced") <= 1e-12 * Number(report, "maxAbs"), report.ToString());
            if (ranks > 1) Assert.IsTrue(Number(report, "controlDiff") > 0.01, $"each rank's own gradients differ from the whole batch's: {report}");
        }
    }

    [TestMethod]
    [DataRow(1)]
    [DataRow(2)]
    public void SyncBatchNormTrainsLikeOneProcessOnTheWholeBatch(int ranks)
    {
        foreach (var report in MpiHostRun.Scenario("syncbn", ranks))
        {
            // Rank 0's weights broadcast, BatchNorm over every rank's rows, gradients averaged: float64 equal to rounding.
            Assert.IsTrue(Number(report, "maxAbs") > 0.1, report.ToString());
            Assert.IsTrue(Number(report, "outputDiff") <= 1e-12, report.ToString());
            Assert.IsTrue(Number(report, "maxDiff") <= 1e-12 * Number(report, "maxAbs"), report.ToString());
            Assert.IsTrue(Number(report, "runningStatsMoved") > 0.01, report.ToString());
            Assert.IsTrue(Number(report, "runningStatsDiff") <= 1e-12, report.ToString());
            if (ranks > 1) Assert.IsTrue(Number(report, "controlDiff") > 0.1, $"per-rank BatchNorm must differ: {report}");
        }
    }

    [TestMethod]
    [DataRow(1)]
    [DataRow(2)]
    public void ContrastiveLossWithGatheredKeysIsTheWholeBatchsLoss(int ranks)
    {
        foreach (var report in MpiHostRun.Scenario("loss", ranks))
        {
            double expected = Number(report, "expectedLoss");
            Assert.IsTrue(expected > 0.1, report.ToString());
            Assert.AreEqual(expected, Number(report, "loss"), 1e-6 * expected, report.ToString());
            Assert.IsTrue(Number(report, "maxAbs") > 0.01, report.ToString());
            Assert.IsTrue(Number(report, "maxDiff") <= 1e-6 * Number(report, "maxAbs"), report.ToString());
            if (ranks > 1)
                Assert.IsTrue(Math.Abs(Number(report, "controlLoss") - expected) > 0.05,
                              $"keys of the own rank only (fewer negatives) must give another loss: {report}");
        }
    }
}
