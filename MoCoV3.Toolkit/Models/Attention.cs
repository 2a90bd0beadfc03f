using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MoCoV3.Models;

/// <summary>Multi-head self-attention with a fused qkv projection (timm layout: <c>qkv</c>, <c>proj</c>).</summary>
public sealed class Attention : nn.Module<Tensor, Tensor>
{
    private readonly Linear qkv;
    private readonly Linear proj;
    private readonly int heads;

    public Attention(int dim, int heads) : base(nameof(Attention))
    {
        this.heads = heads;
        qkv = nn.Linear(dim, dim * 3, hasBias: true);
        proj = nn.Linear(dim, dim);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        long n = x.shape[0], tokens = x.shape[1], dim = x.shape[2];
        // [N, T, 3, H, D/H] -> [3, N, H, T, D/H]
        var parts = Autocast.Linear(qkv, x).reshape(n, tokens, 3, heads, dim / heads).permute(2, 0, 3, 1, 4).unbind(0);
        // softmax(q kᵀ / sqrt(D/H)) v
        var attended = nn.functional.scaled_dot_product_attention(parts[0], parts[1], parts[2]);
        return Autocast.Linear(proj, attended.transpose(1, 2).reshape(n, tokens, dim)).MoveToOuterDisposeScope();
    }
}
