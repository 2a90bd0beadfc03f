using static TorchSharp.torch;

namespace MoCoV3.Distributed;

/// <summary>
/// y = Σ_ranks x as an autograd function: the forward pass all-reduces x, the backward pass all-reduces the gradient of y.
/// The gradient is a sum too because every rank's loss depends on y: ∂(Σ_q L_q)/∂x_r = Σ_q ∂L_q/∂y. This is what makes
/// SyncBatchNorm's statistics differentiable across ranks. Every rank must call it the same number of times, in the same order.
/// </summary>
public sealed class SumOverRanks : autograd.SingleTensorFunction<SumOverRanks>
{
    public override string Name => nameof(SumOverRanks);

    /// <summary>Σ over ranks of <paramref name="x"/> (a CPU tensor), differentiable.</summary>
    public static Tensor Apply(Tensor x, ICommunicator communicator) => apply(x, communicator);

    public override Tensor forward(autograd.AutogradContext ctx, params object[] vars)
    {
        var x = (Tensor)vars[0];
        var communicator = (ICommunicator)vars[1];
        ctx.save_data("communicator", communicator);
        var sum = x.detach().clone();
        communicator.AllReduceSum(sum);
        return sum;
    }

    public override List<Tensor> backward(autograd.AutogradContext ctx, Tensor gradient)
    {
        var communicator = (ICommunicator)ctx.get_data("communicator");
        var sum = gradient.contiguous().clone();
        communicator.AllReduceSum(sum);
        return [sum, null!];   // one entry per argument of apply: none for the communicator
    }
}
