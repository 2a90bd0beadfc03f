using MoCoV3.Optim;
using static MoCoV3.Tests.OptimTestHelpers;
using static TorchSharp.torch;

namespace MoCoV3.Tests;

[TestClass]
public sealed class LarsTests
{
    private const double Tol = 1e-13;

    private static readonly double[] W0 = [1.0, 2.0, 3.0, 4.0];
    private static readonly double[] B0 = [0.5, -1.0];
    private static readonly double[] GW1 = [0.1, -0.2, 0.3, 0.4];
    private static readonly double[] GB1 = [0.2, -0.3];
    private static readonly double[] GW2 = [-0.5, 0.1, 0.2, 0.0];
    private static readonly double[] GB2 = [1.0, 0.5];
    private static readonly double[] GW3 = [0.3, 0.3, -0.1, 0.2];
    private static readonly double[] GB3 = [-0.4, 0.6];

    // ---- reference, written independently with plain doubles ----

    private static double Norm(double[] v)
    {
        double s = 0;
        foreach (var x in v) s += x * x;
        return Math.Sqrt(s);
    }

    /// <summary>The LARS-adjusted gradient of a matrix parameter: decay, then the trust ratio (1 if a norm is 0).</summary>
    private static double[] MatrixUpdate(double[] p, double[] g, double wd, double eta)
    {
        var d = new double[p.Length];
        for (int i = 0; i < p.Length; i++) d[i] = g[i] + wd * p[i];
        double pn = Norm(p), dn = Norm(d);
        double q = pn > 0 && dn > 0 ? eta * pn / dn : 1.0;
        for (int i = 0; i < d.Length; i++) d[i] *= q;
        return d;
    }

    /// <summary>mu ← m·mu + d; p ← p − lr·mu, both in place.</summary>
    private static void Apply(double[] p, double[] mu, double[] d, double m, double lr)
    {
        for (int i = 0; i < p.Length; i++)
        {
            mu[i] = m * mu[i] + d[i];
            p[i] -= lr * mu[i];
        }
    }

    [TestMethod]
    public void TwoSteps_MatchHandComputation()
    {
        const double wd = 0.01, m = 0.9, eta = 0.001, lr1 = 0.1, lr2 = 0.05;
        var w = Param(W0, 2, 2);
        var b = Param(B0, 2);
        using var lars = new Lars([w, b], lr1, wd);

        SetGrads(lars, (w, GW1), (b, GB1));
        lars.Step();
        var afterStep1 = Values(w);
        lars.LearningRate = lr2;
        SetGrads(lars, (w, GW2), (b, GB2));
        lars.Step();

        double[] pw = (double[])W0.Clone(), muW = new double[4];
        double[] pb = (double[])B0.Clone(), muB = new double[2];
        Apply(pw, muW, MatrixUpdate(pw, GW1, wd, eta), m, lr1);
        Apply(pb, muB, GB1, m, lr1);
        Apply(pw, muW, MatrixUpdate(pw, GW2, wd, eta), m, lr2);
        Apply(pb, muB, GB2, m, lr2);

        AssertClose(pw, Values(w), Tol, "weight");
        AssertClose(pb, Values(b), Tol, "bias");

        // Step 1 spelled out: d = g + wd·p = (0.11, -0.18, 0.33, 0.44); ‖p‖ = √30, ‖d‖ = √0.347;
        // q = 0.001·√30/√0.347 ≈ 0.00930; w ← w − 0.1·q·d.
        double q = 0.001 * Math.Sqrt(30.0) / Math.Sqrt(0.347);
        double[] d1 = [0.11, -0.18, 0.33, 0.44];
        AssertClose(W0.Select((x, i) => x - 0.1 * q * d1[i]).ToArray(), afterStep1, Tol, "weight after step 1");
    }

    [TestMethod]
    public void OneDimensionalParameters_GetNoDecayAndNoScaling()
    {
        // Large decay and trust coefficient make any wrong treatment of the bias obvious.
        const double wd = 0.5, lr = 0.1;
        var b = Param(B0, 2);
        using var lars = new Lars([b], lr, wd, momentum: 0.9, trustCoefficient: 0.001);
        SetGrads(lars, (b, GB1));
        lars.Step();
        SetGrads(lars, (b, GB2));
        lars.Step();
        // Plain heavy-ball SGD: mu1 = g1, mu2 = 0.9 g1 + g2; b2 = b0 − lr·mu1 − lr·mu2.
        double[] expected =
        [
            0.5 - 0.1 * 0.2 - 0.1 * (0.9 * 0.2 + 1.0),
            -1.0 - 0.1 * -0.3 - 0.1 * (0.9 * -0.3 + 0.5),
        ];
        AssertClose(expected, Values(b), Tol, "bias");
    }

    [TestMethod]
    public void ZeroGradient_UsesRatioOneAndLeavesParameterFinite()
    {
        // ‖g‖ = 0 (and no decay): ratio 1, update 0. Computing 0.001·‖p‖/0 would give inf and 0·inf = NaN.
        var w = Param(W0, 2, 2);
        using var lars = new Lars([w], lr: 0.1, weightDecay: 0.0);
        SetGrads(lars, (w, new double[4]));
        lars.Step();
        AssertClose(W0, Values(w), 0.0, "weight after a zero gradient");
    }

    [TestMethod]
    public void ZeroParameter_UsesRatioOne()
    {
        // ‖p‖ = 0: ratio 1, so the full gradient (decay adds nothing) is applied: p = −lr·g.
        var w = Param(new double[4], 2, 2);
        using var lars = new Lars([w], lr: 0.1, weightDecay: 0.01);
        SetGrads(lars, (w, GW1));
        lars.Step();
        AssertClose(GW1.Select(g => -0.1 * g).ToArray(), Values(w), Tol, "weight from zero");
    }

    [TestMethod]
    public void StepAndZeroGrad_LeaveNoLiveTensorsBehind()
    {
        var w = Param(W0, 2, 2);
        var b = Param(B0, 2);
        using var lars = new Lars([w, b], 0.1, 0.01);
        SetGrads(lars, (w, GW1), (b, GB1));
        GC.Collect();
        GC.WaitForPendingFinalizers();
        long before = Tensor.TotalCount;
        for (int i = 0; i < 5; i++) lars.Step();
        lars.ZeroGrad();
        Assert.AreEqual(before, Tensor.TotalCount, "tensors created by Step/ZeroGrad must be disposed");
    }

    [TestMethod]
    public void FrozenParameters_AreDropped()
    {
        var w = Param(W0, 2, 2);
        var frozen = Param(B0, 2);
        frozen.requires_grad = false;
        using var lars = new Lars([w, frozen], lr: 0.1, weightDecay: 0.0);
        Assert.HasCount(1, lars.Parameters);
        Assert.AreSame(w, lars.Parameters[0]);
    }

    [TestMethod]
    public void SaveLoad_ReproducesTheNextStepExactly()
    {
        const double wd = 0.01;
        var w = Param(W0, 2, 2);
        var b = Param(B0, 2);
        using var original = new Lars([w, b], 0.1, wd);
        SetGrads(original, (w, GW1), (b, GB1));
        original.Step();
        SetGrads(original, (w, GW2), (b, GB2));
        original.Step();
        original.LearningRate = 0.07;

        using var stream = new MemoryStream();
        using (var writer = new BinaryWriter(stream, System.Text.Encoding.UTF8, leaveOpen: true))
            original.Save(writer);

        var w2 = Copy(w);
        var b2 = Copy(b);
        using var resumed = new Lars([w2, b2], 1.0, wd);
        stream.Position = 0;
        using (var reader = new BinaryReader(stream, System.Text.Encoding.UTF8, leaveOpen: true))
            resumed.Load(reader);
        Assert.AreEqual(stream.Length, stream.Position, "Load reads exactly what Save wrote");
        Assert.AreEqual(0.07, resumed.LearningRate);

        // Without the momentum buffers the next step differs: the comparison below can fail.
        var w3 = Copy(w);
        var b3 = Copy(b);
        using var fresh = new Lars([w3, b3], 0.07, wd);

        SetGrads(original, (w, GW3), (b, GB3));
        original.Step();
        SetGrads(resumed, (w2, GW3), (b2, GB3));
        resumed.Step();
        SetGrads(fresh, (w3, GW3), (b3, GB3));
        fresh.Step();

        CollectionAssert.AreEqual(Values(w), Values(w2));
        CollectionAssert.AreEqual(Values(b), Values(b2));
        CollectionAssert.AreNotEqual(Values(b), Values(b3));
        CollectionAssert.AreNotEqual(Values(w), Values(w3));
    }

    [TestMethod]
    public void Load_RejectsMismatchedState()
    {
        var w = Param(W0, 2, 2);
        var b = Param(B0, 2);
        using var two = new Lars([w, b], 0.1, 0.0);
        using var stream = new MemoryStream();
        using (var writer = new BinaryWriter(stream, System.Text.Encoding.UTF8, leaveOpen: true))
            two.Save(writer);

        using var one = new Lars([Param(W0, 2, 2)], 0.1, 0.0);
        stream.Position = 0;
        var countError = Assert.ThrowsExactly<InvalidDataException>(() => one.Load(new BinaryReader(stream)));
        StringAssert.Contains(countError.Message, "2 momentum buffers");

        using var reshaped = new Lars([Param(W0, 4), Param(B0, 2)], 0.1, 0.0);
        stream.Position = 0;
        var shapeError = Assert.ThrowsExactly<InvalidDataException>(() => reshaped.Load(new BinaryReader(stream)));
        StringAssert.Contains(shapeError.Message, "momentum buffer 0");
        StringAssert.Contains(shapeError.Message, "[2, 2]");

        using var garbage = new MemoryStream([1, 2, 3, 4, 5, 6, 7, 8]);
        Assert.ThrowsExactly<InvalidDataException>(() => two.Load(new BinaryReader(garbage)));
    }
}
