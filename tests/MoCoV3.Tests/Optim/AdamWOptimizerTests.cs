using MoCoV3.Optim;
using static MoCoV3.Tests.OptimTestHelpers;

namespace MoCoV3.Tests;

[TestClass]
public sealed class AdamWOptimizerTests
{
    private static readonly double[] P0 = [1.0, -2.0, 0.5, 3.0];
    private static readonly double[] G1 = [0.5, -0.1, 0.0, 2.0];
    private static readonly double[] G2 = [-0.2, 0.3, 0.4, 1.0];
    private static readonly double[] G3 = [0.1, 0.1, -0.3, -0.5];

    [TestMethod]
    public void TwoSteps_MatchPyTorchAdamWByHand()
    {
        const double lr1 = 0.1, lr2 = 0.05, wd = 0.1, b1 = 0.9, b2 = 0.999, eps = 1e-8;
        var p = Param(P0, 2, 2);
        using var opt = new AdamWOptimizer([p], lr1, wd);
        SetGrads(opt, (p, G1));
        opt.Step();
        opt.LearningRate = lr2;
        Assert.AreEqual(lr2, opt.LearningRate);
        SetGrads(opt, (p, G2));
        opt.Step();

        // PyTorch AdamW: p ← p(1 − lr·wd); m ← b1 m + (1−b1) g; v ← b2 v + (1−b2) g²;
        // p ← p − (lr / (1 − b1^t)) · m / (√v / √(1 − b2^t) + eps).
        var expected = new double[4];
        for (int i = 0; i < 4; i++)
        {
            double x = P0[i], m = 0, v = 0;
            (double g, double lr, int t)[] steps = [(G1[i], lr1, 1), (G2[i], lr2, 2)];
            foreach (var (g, lr, t) in steps)
            {
                x *= 1 - lr * wd;
                m = b1 * m + (1 - b1) * g;
                v = b2 * v + (1 - b2) * g * g;
                x -= lr / (1 - Math.Pow(b1, t)) * m / (Math.Sqrt(v) / Math.Sqrt(1 - Math.Pow(b2, t)) + eps);
            }
            expected[i] = x;
        }
        AssertClose(expected, Values(p), 1e-12, "param");
    }

    [TestMethod]
    public void FirstStep_IsDecayThenLrTimesSignOfGradient()
    {
        // Step 1 after bias correction: m̂ = g, √v̂ = |g|, so p ← p(1 − lr·wd) − lr·g/(|g| + eps).
        // lr 0.1, wd 0.1: (1, −2, 0.5, 3)·0.99 − 0.1·(1, −1, 0, 1) = (0.89, −1.88, 0.495, 2.87).
        var p = Param(P0, 2, 2);
        using var opt = new AdamWOptimizer([p], 0.1, 0.1);
        SetGrads(opt, (p, G1));
        opt.Step();
        AssertClose([0.89, -1.88, 0.495, 2.87], Values(p), 1e-7, "param");
    }

    [TestMethod]
    public void StepAndZeroGrad_LeaveNoLiveTensorsBehind()
    {
        var p = Param(P0, 2, 2);
        using var opt = new AdamWOptimizer([p], 0.1, 0.1);
        SetGrads(opt, (p, G1));
        GC.Collect();
        GC.WaitForPendingFinalizers();
        long before = TorchSharp.torch.Tensor.TotalCount;
        for (int i = 0; i < 5; i++) opt.Step();
        opt.ZeroGrad();
        Assert.AreEqual(before, TorchSharp.torch.Tensor.TotalCount);
    }

    [TestMethod]
    public void FrozenParameters_AreDropped()
    {
        var p = Param(P0, 2, 2);
        var frozen = Param(P0, 4);
        frozen.requires_grad = false;
        using var opt = new AdamWOptimizer([frozen, p], 0.1, 0.1);
        Assert.HasCount(1, opt.Parameters);
        Assert.AreSame(p, opt.Parameters[0]);
    }

    [TestMethod]
    public void SaveLoad_RoundTripsStepCountAndMoments()
    {
        const double wd = 0.1;
        var p = Param(P0, 2, 2);
        using var original = new AdamWOptimizer([p], 0.1, wd);
        SetGrads(original, (p, G1));
        original.Step();
        SetGrads(original, (p, G2));
        original.Step();
        original.LearningRate = 0.03;

        using var stream = new MemoryStream();
        using (var writer = new BinaryWriter(stream, System.Text.Encoding.UTF8, leaveOpen: true))
            original.Save(writer);

        var p2 = Copy(p);
        using var resumed = new AdamWOptimizer([p2], 1.0, wd);
        stream.Position = 0;
        using (var reader = new BinaryReader(stream, System.Text.Encoding.UTF8, leaveOpen: true))
            resumed.Load(reader);
        Assert.AreEqual(stream.Length, stream.Position, "Load reads exactly what Save wrote");
        Assert.AreEqual(0.03, resumed.LearningRate);

        // Control: same params and lr but step count 0 and zero moments give a different next step.
        var p3 = Copy(p);
        using var fresh = new AdamWOptimizer([p3], 0.03, wd);

        SetGrads(original, (p, G3));
        original.Step();
        SetGrads(resumed, (p2, G3));
        resumed.Step();
        SetGrads(fresh, (p3, G3));
        fresh.Step();

        CollectionAssert.AreEqual(Values(p), Values(p2));
        CollectionAssert.AreNotEqual(Values(p), Values(p3));
    }
}
