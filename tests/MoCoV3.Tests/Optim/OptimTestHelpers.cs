using MoCoV3.Optim;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MoCoV3.Tests;

/// <summary>Small float64 parameters with gradients set through a real backward pass.</summary>
internal static class OptimTestHelpers
{
    public static Parameter Param(double[] values, params long[] shape) =>
        nn.Parameter(tensor(values, shape, dtype: ScalarType.Float64).DetachFromDisposeScope());

    public static Parameter Copy(Parameter p) => nn.Parameter(p.detach().clone().DetachFromDisposeScope(), p.requires_grad);

    public static double[] Values(Tensor t) => t.detach().cpu().data<double>().ToArray();

    /// <summary>Zeroes the gradients, then backpropagates <c>Σ_i (p_i · g_i).sum()</c> so that <c>p_i.grad == g_i</c>.</summary>
    public static void SetGrads(ITrainingOptimizer optimizer, params (Parameter p, double[] g)[] grads)
    {
        optimizer.ZeroGrad();
        using var scope = NewDisposeScope();
        Tensor loss = zeros(1, dtype: ScalarType.Float64);
        foreach (var (p, g) in grads)
            loss = loss + (p * tensor(g, p.shape, dtype: ScalarType.Float64)).sum();
        loss.sum().backward();
    }

    public static void AssertClose(double[] expected, double[] actual, double tolerance, string what)
    {
        Assert.HasCount(expected.Length, actual, what);
        for (int i = 0; i < expected.Length; i++)
            Assert.AreEqual(expected[i], actual[i], tolerance, $"{what}[{i}]");
    }
}
