using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MoCoV3.Distributed;

/// <summary>
/// BatchNorm over the batch of every rank, with the statistics of PyTorch's <c>SyncBatchNorm</c> (which the official
/// code puts in both encoders and the predictor; it combines per-rank means and variances, here two all-reduced sums),
/// for a <see cref="BatchNorm1d"/> or <see cref="BatchNorm2d"/> module's own γ, β, ε, momentum and running statistics.
/// Training mode, with n = Σ_ranks N (× H × W for BatchNorm2d) the values per channel over all ranks, sums over every
/// dimension but the channel's:
/// <code>
///   μ  = Σ_ranks Σ_rows x / n                       (SumOverRanks: all-reduced forward and backward)
///   σ² = Σ_ranks Σ_rows (x − μ)² / n                (two passes, as one process computes it)
///   y  = (x − μ) / √(σ² + ε) · γ + β
///   running_mean ← (1 − m)·running_mean + m·μ,   running_var ← (1 − m)·running_var + m·σ²·n/(n − 1)
/// </code>
/// With gradients averaged over ranks afterwards this is exactly the one-process gradient on the concatenated batch.
/// Evaluation mode is the module's own forward (running statistics).
/// Under <see cref="Models.Autocast"/> (<c>--amp</c>) a bf16 input is normalised in fp32 and the output returned in bf16, as
/// libtorch's batch norm does for a bf16 input with fp32 γ, β and statistics (and PyTorch's SyncBatchNorm, whose statistics
/// are fp32): the sums all-reduced are fp32, the running statistics stay fp32.
/// </summary>
public static class SyncBatchNorm
{
    /// <summary>
    /// The forward pass of a <see cref="Sequential"/> (a projector or predictor MLP, a ResNet downsample) with every
    /// BatchNorm synchronised over the ranks (what <c>convert_sync_batchnorm</c> does); Linear and Conv2d layers run through
    /// <see cref="Models.Autocast"/> (bf16 under <c>--amp</c>, as <see cref="Models.Autocast.Forward"/> runs them in one
    /// process), the others as they are.
    /// </summary>
    public static Tensor ForwardSequential(Sequential layers, Tensor x, ICommunicator communicator)
    {
        foreach (var layer in layers.children())
            x = layer switch
            {
                BatchNorm bn => Forward(bn, x, communicator),
                Linear linear => Models.Autocast.Linear(linear, x),
                Conv2d conv => Models.Autocast.Conv2d(conv, x),
                nn.Module<Tensor, Tensor> module => module.forward(x),
                _ => throw new NotSupportedException($"SyncBatchNorm: unexpected layer {layer.GetType().Name} in a Sequential"),
            };
        return x;
    }

    public static Tensor Forward(BatchNorm bn, Tensor x, ICommunicator communicator)
    {
        if (!bn.training) return bn.forward(x);
        if (x.dim() != 2 && x.dim() != 4)
            throw new ArgumentException($"SyncBatchNorm takes [N, C] (BatchNorm1d of the heads) or [N, C, H, W] inputs (BatchNorm2d), not [{string.Join(", ", x.shape)}]");
        var inputType = x.dtype;
        if (inputType is ScalarType.BFloat16 or ScalarType.Float16) x = x.to_type(ScalarType.Float32);
        long[] dims = x.dim() == 2 ? [0] : [0, 2, 3];
        // [C] statistics broadcast over [N, C] as they are, over [N, C, H, W] as [C, 1, 1].
        Tensor PerChannel(Tensor t) => x.dim() == 2 ? t : t.view(-1, 1, 1);

        double[] count = [x.numel() / x.shape[1]];
        communicator.AllReduceSum<double>(count);
        double n = count[0];
        if (n < 2) throw new ArgumentException($"SyncBatchNorm needs more than one value per channel over all ranks (global batch {n})");

        var mean = SumOverRanks.Apply(x.sum(dims), communicator) / n;
        var centred = x - PerChannel(mean);
        var variance = SumOverRanks.Apply(centred.square().sum(dims), communicator) / n;
        var y = centred * PerChannel((variance + bn.eps).rsqrt());
        if (bn.weight is not null) y = y * PerChannel(bn.weight);
        if (bn.bias is not null) y = y + PerChannel(bn.bias);

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
        return y.dtype == inputType ? y : y.to_type(inputType);
    }
}
