using MoCoV3.Method;

namespace MoCoV3.Tests.Method;

[TestClass]
public sealed class SchedulesTests
{
    [TestMethod]
    public void LearningRateWarmsUpLinearlyThenFollowsHalfCosine()
    {
        const double peak = 2.4e-3, warmup = 40, epochs = 300;
        Assert.AreEqual(0.0, Schedules.LearningRate(0, peak, warmup, epochs), 1e-15);
        Assert.AreEqual(peak / 4, Schedules.LearningRate(10, peak, warmup, epochs), 1e-15);
        Assert.AreEqual(peak, Schedules.LearningRate(40, peak, warmup, epochs), 1e-15);
        Assert.AreEqual(peak / 2, Schedules.LearningRate(170, peak, warmup, epochs), 1e-12);
        Assert.AreEqual(peak * 0.5 * (1 + Math.Cos(Math.PI * 0.25)), Schedules.LearningRate(105, peak, warmup, epochs), 1e-12);
        Assert.AreEqual(0.0, Schedules.LearningRate(300, peak, warmup, epochs), 1e-15);
    }

    [TestMethod]
    public void LearningRateScalesWithBatch() =>
        Assert.AreEqual(2.4e-3, Schedules.ScaledLearningRate(1.5e-4, 4096), 1e-15);

    [TestMethod]
    public void MomentumRisesFromM0ToOneOnAHalfCosine()
    {
        Assert.AreEqual(0.99, Schedules.Momentum(0, 300, 0.99), 1e-15);
        Assert.AreEqual(0.995, Schedules.Momentum(150, 300, 0.99), 1e-12);
        Assert.AreEqual(1 - 0.5 * (1 + Math.Cos(Math.PI / 3)) * 0.01, Schedules.Momentum(100, 300, 0.99), 1e-12);
        Assert.AreEqual(1.0, Schedules.Momentum(300, 300, 0.99), 1e-15);
    }
}
