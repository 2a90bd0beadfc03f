using MoCoV3.Distributed;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MoCoV3.Tests.Distributed;

/// <summary>The data-parallel pieces in one process (a world of one rank): each must be the plain computation.</summary>
[TestClass]
public sealed class DataParallelPiecesTests
{
    [TestMethod]
    public void SyncBatchNormOfOneRankIsBatchNorm1dWithItsRunningStatistics()
    {
        using var _ = NewDisposeScope();
        using var world = new SingleProcessCommunicator();
        manual_seed(3);
        var x = randn(16, 5, ScalarType.Float64) * 3 + 2;
        var plain = nn.BatchNorm1d(5, dtype: ScalarType.Float64);
        var synced = nn.BatchNorm1d(5, dtype: ScalarType.Float64);
        using (no_grad()) { plain.weight!.uniform_(0.5, 1.5); synced.weight!.copy_(plain.weight); }

        var xPlain = x.clone().requires_grad_();
        var xSynced = x.clone().requires_grad_();
        var yPlain = plain.forward(xPlain);
        var ySynced = SyncBatchNorm.Forward(synced, xSynced, world);
        Assert.IsTrue((yPlain - ySynced).abs().max().item<double>() < 1e-12);
        var w = randn(16, 5, ScalarType.Float64);   // Σ y² would have no gradient: normalised values have a fixed sum of squares
        (yPlain * w).sum().backward();
        (ySynced * w).sum().backward();
        Assert.IsTrue(xPlain.grad!.abs().max().item<double>() > 0.1);
        Assert.IsTrue((xPlain.grad! - xSynced.grad!).abs().max().item<double>() < 1e-12, "input gradient through the statistics");
        Assert.IsTrue((plain.weight!.grad! - synced.weight!.grad!).abs().max().item<double>() < 1e-12);
        Assert.IsTrue((plain.running_mean! - synced.running_mean!).abs().max().item<double>() < 1e-12);
        Assert.IsTrue((plain.running_var! - synced.running_var!).abs().max().item<double>() < 1e-12);
        Assert.AreEqual(1.0, synced.num_batches_tracked!.to_type(ScalarType.Float64).item<double>());

        synced.eval();
        plain.eval();
        Assert.IsTrue((plain.forward(x) - SyncBatchNorm.Forward(synced, x, world)).abs().max().item<double>() < 1e-12, "eval mode uses the running statistics");
    }

    [TestMethod]
    public void SyncBatchNormRefusesImagesAndSingleValues()
    {
        using var world = new SingleProcessCommunicator();
        var bn = nn.BatchNorm1d(4);
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() => SyncBatchNorm.Forward(bn, zeros(2, 4, 3), world)).Message, "[2, 4, 3]");
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() => SyncBatchNorm.Forward(bn, zeros(1, 4), world)).Message, "global batch 1");
    }

    [TestMethod]
    public void GradientsAccumulateInTheFlatBufferAndZeroGradKeepsThem()
    {
        using var _ = NewDisposeScope();
        using var world = new SingleProcessCommunicator();
        manual_seed(5);
        var model = nn.Sequential(nn.Linear(4, 3), nn.Linear(3, 2));
        using var averager = new GradientAverager(model.parameters(), world);
        Assert.AreEqual(4 * 3 + 3 + 3 * 2 + 2, averager.Buffer.numel());
        var optimizer = optim.SGD(model.parameters(), 0.1);
        for (int step = 0; step < 2; step++)
        {
            optimizer.zero_grad();
            model.forward(randn(5, 4)).square().sum().backward();
            averager.Average();
            for (int i = 0; i < 4; i++) Assert.IsTrue(averager.GradientIsInBuffer(i), $"step {step}, parameter {i}");
            var flat = cat(model.parameters().Select(p => p.grad!.flatten()).ToList());
            Assert.IsTrue(flat.abs().max().item<float>() > 0.01);
            Assert.AreEqual(0f, (flat - averager.Buffer).abs().max().item<float>());
        }
    }

    [TestMethod]
    public void GradientAveragerRefusesMixedDtypes()
    {
        using var world = new SingleProcessCommunicator();
        var a = new Parameter(zeros(2));
        var b = new Parameter(zeros(2, dtype: ScalarType.Float64));
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() => new GradientAverager([a, b], world)).Message, "Float32 and Float64");
    }

    [TestMethod]
    public void ContrastiveLossOfOneRankIsMoCosLoss()
    {
        using var _ = NewDisposeScope();
        using var world = new SingleProcessCommunicator();
        manual_seed(9);
        var q = randn(6, 8);
        var k = randn(6, 8);
        float expected = MoCoV3.Method.MoCo.ContrastiveLoss(q, k, 0.2).item<float>();
        Assert.IsTrue(expected > 0.1);
        Assert.AreEqual(expected, DistributedContrastiveLoss.Compute(q, k, 0.2, world).item<float>(), 1e-6f);
    }
}
