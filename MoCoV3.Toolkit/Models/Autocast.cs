using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MoCoV3.Models;

/// <summary>
/// Mixed precision the way <c>torch.autocast</c> does it, for TorchSharp 0.107, which has no autocast: inside an
/// <see cref="Enable"/> scope, the layers that route through here compute matrix products (linear, convolution) in
/// a low-precision type (bf16) from fp32 master weights cast on the fly, so gradients reach the fp32 parameters
/// and the optimiser state stays fp32. What autocast keeps in fp32 stays fp32 here: LayerNorm and the residual
/// stream of the ViT (a bf16 branch added to an fp32 stream promotes to fp32), BatchNorm statistics (libtorch
/// accumulates them in fp32 and keeps running statistics in fp32 for bf16 inputs), and the loss
/// (<see cref="Method.MoCo.ContrastiveLoss"/> casts to fp32). Attention runs on the bf16 q, k, v
/// (fused SDPA kernels; PyTorch's autocast would do the same for <c>scaled_dot_product_attention</c>).
/// Backward runs outside the scope, as with autocast; bf16 needs no loss scaling.
/// </summary>
public static class Autocast
{
    [ThreadStatic] private static ScalarType? computeType;

    /// <summary>The type matrix products run in on this thread now, or null outside any scope (full precision).</summary>
    public static ScalarType? ComputeType => computeType;

    /// <summary>
    /// Makes <paramref name="type"/> (bf16; null = off) the compute type on this thread until disposed. fp16 is not offered:
    /// it would need loss scaling (a GradScaler), and bf16 has fp32's range.
    /// </summary>
    public static IDisposable Enable(ScalarType? type)
    {
        if (type is not (null or ScalarType.BFloat16))
            throw new ArgumentException($"autocast computes in bfloat16, not {type}", nameof(type));
        var scope = new Scope(computeType);
        computeType = type;
        return scope;
    }

    /// <summary><c>layer(x)</c>, in the compute type when a scope is active.</summary>
    public static Tensor Linear(Linear layer, Tensor x)
    {
        if (computeType is not ScalarType type) return layer.forward(x);
        using var scope = NewDisposeScope();
        var y = nn.functional.linear(x.to_type(type), layer.weight!.to_type(type), layer.bias?.to_type(type));
        return y.MoveToOuterDisposeScope();
    }

    /// <summary><c>conv(x)</c> for a 2-D convolution (zero padding), in the compute type when a scope is active.</summary>
    public static Tensor Conv2d(Conv2d conv, Tensor x)
    {
        if (computeType is not ScalarType type) return conv.forward(x);
        if (conv.padding_mode != TorchSharp.PaddingModes.Zeros || conv.padding_type is not null)
            throw new NotSupportedException("autocast supports convolutions with explicit zero padding only");
        using var scope = NewDisposeScope();
        var y = nn.functional.conv2d(x.to_type(type), conv.weight!.to_type(type), conv.bias?.to_type(type),
            conv.stride, conv.padding, conv.dilation, conv.groups);
        return y.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// A <see cref="Sequential"/> of the projector/predictor kind (Linear, Conv2d, BatchNorm, ReLU, ...): its Linear and
    /// Conv2d children through <see cref="Linear"/> and <see cref="Conv2d"/>, the others as they are.
    /// </summary>
    public static Tensor Forward(Sequential sequential, Tensor x)
    {
        if (computeType is null) return sequential.forward(x);
        using var scope = NewDisposeScope();
        foreach (var child in sequential.children())
        {
            x = child switch
            {
                Linear linear => Linear(linear, x),
                TorchSharp.Modules.Conv2d conv => Conv2d(conv, x),
                nn.Module<Tensor, Tensor> module => module.forward(x),
                _ => throw new NotSupportedException($"autocast: unexpected module {child.GetType().Name} in a Sequential"),
            };
        }
        return x.MoveToOuterDisposeScope();
    }

    private sealed class Scope(ScalarType? previous) : IDisposable
    {
        private bool disposed;

        public void Dispose()
        {
            if (disposed) return;
            disposed = true;
            computeType = previous;
        }
    }
}
