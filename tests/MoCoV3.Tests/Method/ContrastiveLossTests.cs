using MoCoV3.Method;
using static TorchSharp.torch;

namespace MoCoV3.Tests.Method;

[TestClass]
public sealed class ContrastiveLossTests
{
    private static readonly double[,] Q = { { 1.0, 2.0 }, { -0.5, 0.3 }, { 0.2, -1.0 } };
    private static readonly double[,] K = { { 0.9, 1.5 }, { -1.0, 0.1 }, { 0.4, -0.6 } };

    /// <summary>The loss written out with plain doubles: normalise rows, logits q·kᵀ/τ, mean CE on the diagonal, × 2τ.</summary>
    private static double HandLoss(double[,] q, double[,] k, double tau)
    {
        int n = q.GetLength(0), d = q.GetLength(1);
        double[] Row(double[,] m, int i)
        {
            var r = Enumerable.Range(0, d).Select(j => m[i, j]).ToArray();
            double norm = Math.Sqrt(r.Sum(v => v * v));
            return r.Select(v => v / norm).ToArray();
        }
        double total = 0;
        for (int i = 0; i < n; i++)
        {
            var qi = Row(q, i);
            var logits = Enumerable.Range(0, n).Select(j => Row(k, j).Zip(qi, (a, b) => a * b).Sum() / tau).ToArray();
            double max = logits.Max();
            double logSumExp = max + Math.Log(logits.Sum(l => Math.Exp(l - max)));
            total += logSumExp - logits[i];
        }
        return total / n * 2 * tau;
    }

    private static Tensor T(double[,] m) => tensor(m).to_type(ScalarType.Float32);

    [TestMethod]
    [DataRow(0.2)]
    [DataRow(1.0)]
    public void EqualsHandComputation(double tau)
    {
        double expected = HandLoss(Q, K, tau);
        double actual = MoCo.ContrastiveLoss(T(Q), T(K), tau).item<float>();
        Assert.AreEqual(expected, actual, 1e-5);
    }

    [TestMethod]
    public void ScaleOfInputsDoesNotMatter()
    {
        // q and k are L2-normalised, so scaling a row changes nothing.
        double a = MoCo.ContrastiveLoss(T(Q), T(K), 0.2).item<float>();
        double b = MoCo.ContrastiveLoss(T(Q) * 7.0, T(K) * 0.01, 0.2).item<float>();
        Assert.AreEqual(a, b, 1e-5);
    }

    [TestMethod]
    public void RandomFeaturesGiveTheExpectedLossLevel()
    {
        // With uncorrelated q and k each term is ≈ 2τ·ln(N): the "sanity value" of the recipe.
        manual_seed(1);
        int n = 512;
        double tau = 1.0;
        double loss = MoCo.ContrastiveLoss(randn(n, 256), randn(n, 256), tau).item<float>();
        Assert.AreEqual(2 * tau * Math.Log(n), loss, 0.1);
    }
}
