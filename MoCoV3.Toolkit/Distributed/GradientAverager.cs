using TorchSharp;
using TorchSharp.Modules;
using MoCoV3.Runtime;
using static TorchSharp.torch;

namespace MoCoV3.Distributed;

/// <summary>
/// Averages the gradients of a set of parameters over ranks with one in-place all-reduce, as DDP does before the
/// optimiser step. The gradients live in one flat buffer: each parameter's <c>grad</c> is a view of it, so backward
/// accumulates straight into the buffer and nothing is copied (an optimiser's <c>zero_grad</c> zeroes the views in place).
/// A gradient that was replaced by another tensor (e.g. set to null and recreated by backward) is copied into its slot
/// and pointed back at it; a parameter without a gradient this step contributes zeros and keeps none.
/// When the gradients already are consecutive slices of one tensor (an optimiser over a <see cref="Optim.ParameterBuffer"/>
/// attached them so), that tensor is the buffer: the averager and the optimiser share it and nothing is re-pointed.
/// </summary>
public sealed class GradientAverager : IDisposable
{
    private readonly ICommunicator communicator;
    private readonly Parameter[] parameters;
    private readonly Tensor[] views;

    /// <param name="parameters">The trained parameters (those with <c>requires_grad</c>), CPU (or CUDA over NCCL), one dtype and device, same order on every rank.</param>
    public GradientAverager(IEnumerable<Parameter> parameters, ICommunicator communicator)
    {
        this.communicator = communicator;
        this.parameters = [.. parameters.Where(p => p.requires_grad)];
        if (this.parameters.Length == 0) throw new ArgumentException("no parameter requires a gradient: nothing to average");
        var dtype = this.parameters[0].dtype;
        foreach (var p in this.parameters)
        {
            if (!communicator.Takes(p.device))
                throw new NotSupportedException($"gradient averaging over {communicator.Description} takes CPU parameters, not {p.device_type} (CUDA needs NCCL: --device cuda)");
            if (p.dtype != dtype)
                throw new ArgumentException($"one flat gradient buffer needs one dtype: parameters are {dtype} and {p.dtype}");
        }
        long total = this.parameters.Sum(p => p.numel());
        // Gradients already packed in this order (an optimiser over a ParameterBuffer): reduce that buffer in place.
        var packed = Optim.ParameterBuffer.FlatGradientsOf(this.parameters);
        Buffer = packed ?? zeros(total, dtype, device: this.parameters[0].device);
        views = new Tensor[this.parameters.Length];
        long offset = 0;
        using var _ = no_grad();
        for (int i = 0; i < this.parameters.Length; i++)
        {
            var p = this.parameters[i];
            if (packed is not null)
            {
                using var grad = p.grad!;
                offset = grad.storage_offset() - Buffer.storage_offset(); // past the packing's alignment padding
            }
            views[i] = Buffer.narrow(0, offset, p.numel()).view(p.shape);
            if (p.grad is Tensor existing) views[i].copy_(existing);
            p.grad = views[i];
            offset += p.numel();
        }
    }

    /// <summary>The flat gradient buffer (every parameter's gradient, in order).</summary>
    public Tensor Buffer { get; }

    /// <summary>Replaces every gradient by its mean over ranks (call after backward, before clipping and the optimiser step).</summary>
    public void Average()
    {
        using (no_grad())
        {
            for (int i = 0; i < parameters.Length; i++)
            {
                var p = parameters[i];
                using var grad = p.grad;
                if (grad is null)
                {
                    views[i].zero_();
                }
                else if (!TensorMemory.SameMemory(grad, views[i]))
                {
                    views[i].copy_(grad);
                    p.grad = views[i];
                }
            }
        }
        communicator.AllReduceSum(Buffer);
        if (communicator.Size > 1) Buffer.div_(communicator.Size);
    }

    /// <summary>Whether parameter <paramref name="index"/>'s gradient is its view of the buffer (for tests and diagnostics).</summary>
    public bool GradientIsInBuffer(int index)
    {
        using var grad = parameters[index].grad;
        return grad is not null && TensorMemory.SameMemory(grad, views[index]);
    }

    public void Dispose()
    {
        foreach (var v in views) v.Dispose();
        Buffer.Dispose();
    }
}
