using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MoCoV3.Distributed;

/// <summary>
/// BatchNorm1d over the batch of every rank, with the statistics of PyTorch's <c>SyncBatchNorm</c> (which the official
/// code puts in both encoders and the predictor; it combines per-rank means and variances, here two all-reduced sums),
/// for a <see cref="BatchNorm1d"/> module's own γ, β, ε, momentum and running statistics. Training mode, with
/// n = Σ_ranks N the global batch:
/// <code>
///   μ  = Σ_ranks Σ_rows x / n                       (SumOverRanks: all-reduced forward and backward)
///   σ² = Σ_ranks Σ_rows (x − μ)² / n                (two passes, as one process computes it)
///   y  = (x − μ) / √(σ² + ε) · γ + β
///   running_mean ← (1 − m)·running_mean + m·μ,   running_var ← (1 − m)·running_var + m·σ²·n/(n − 1)
/// </code>
/// With gradients averaged over ranks afterwards this is exactly the one-process gradient on the concatenated batch.
/// Evaluation mode is the module's own forward (running statistics).
/// </summary>
public static class SyncBatchNorm
{
    public static Tensor Forward(BatchNorm1d bn, Tensor x, ICommunicator communicator)
    {
        if (!bn.training) return bn.forward(x);
        if (x.dim() != 2)
            throw new ArgumentException($"SyncBatchNorm takes [N, C] inputs (BatchNorm1d of the projector and predictor), not [{string.Join(", ", x.shape)}]");

        double[] count = [x.shape[0]];
        communicator.AllReduceSum<double>(count);
        double n = count[0];
        if (n < 2) throw new ArgumentException($"SyncBatchNorm needs more than one value per channel over all ranks (global batch {n})");

        var mean = SumOverRanks.Apply(x.sum(dim: 0), communicator) / n;
        var centred = x - mean;
        var variance = SumOverRanks.Apply(centred.square().sum(dim: 0), communicator) / n;
        var y = centred * (variance + bn.eps).rsqrt();
        if (bn.weight is not null) y = y * bn.weight;
        if (bn.bias is not null) y = y + bn.bias;

        if (bn.track_running_stats && bn.running_mean is not null && bn.running_var is not null)
        {
            using var _ = no_grad();
            double momentum;
            if (bn.num_batches_tracked is not null)
            {
                bn.num_batches_tracked.add_(1);
                momentum = bn.momentum ?? 1.0 / bn.num_batches_tracked.to_type(ScalarType.Float64).item<double>();   // null: cumulative average
            }
            else
            {
                momentum = bn.momentum ?? 0.1;
            }
            bn.running_mean.mul_(1 - momentum).add_(mean.detach().to_type(bn.running_mean.dtype), alpha: momentum);
            bn.running_var.mul_(1 - momentum).add_((variance.detach() * (n / (n - 1))).to_type(bn.running_var.dtype), alpha: momentum);
        }
        return y;
    }
}
