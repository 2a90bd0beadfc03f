using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MoCoV3.Models;

/// <summary>
/// A pre-norm transformer block: x + drop_path(attn(norm1(x))), then x + drop_path(mlp(norm2(x))); GELU MLP,
/// LayerNorm eps 1e-6. Drop path (stochastic depth) is 0 unless fine-tuning sets it, so pretraining is unchanged.
/// </summary>
public sealed class TransformerBlock : nn.Module<Tensor, Tensor>
{
    private readonly LayerNorm norm1;
    private readonly Attention attn;
    private readonly LayerNorm norm2;
    private readonly Mlp mlp;
    private readonly DropPath drop_path;

    public TransformerBlock(int dim, int heads, double mlpRatio, double dropPath = 0) : base(nameof(TransformerBlock))
    {
        drop_path = new DropPath(dropPath);
        norm1 = nn.LayerNorm(dim, eps: 1e-6);
        attn = new Attention(dim, heads);
        norm2 = nn.LayerNorm(dim, eps: 1e-6);
        mlp = new Mlp(dim, (int)(dim * mlpRatio));
        RegisterComponents();
    }

    /// <summary>Stochastic-depth rate of both residual branches (0: none).</summary>
    public double DropPathRate
    {
        get => drop_path.Rate;
        set => drop_path.Rate = value;
    }

    /// <summary>This rank's rows of the global batch, for the drop-path draws (see <see cref="DropPath.Rows"/>); null: the whole batch.</summary>
    public (int Offset, int GlobalCount)? DropPathRows
    {
        get => drop_path.Rows;
        set => drop_path.Rows = value;
    }

    public override Tensor forward(Tensor x)
    {
        // Intermediates are released as soon as the block returns (autograd keeps what backward needs),
        // instead of living until the end of the training step.
        using var scope = NewDisposeScope();
        x = x + drop_path.forward(attn.forward(norm1.forward(x)));
        return (x + drop_path.forward(mlp.forward(norm2.forward(x)))).MoveToOuterDisposeScope();
    }

    /// <summary>The ViT's MLP: fc1, exact (erf) GELU, fc2.</summary>
    public sealed class Mlp : nn.Module<Tensor, Tensor>
    {
        private readonly Linear fc1;
        private readonly Linear fc2;

        public Mlp(int dim, int hidden) : base(nameof(Mlp))
        {
            fc1 = nn.Linear(dim, hidden);
            fc2 = nn.Linear(hidden, dim);
            RegisterComponents();
        }

        public override Tensor forward(Tensor x)
        {
            using var scope = NewDisposeScope();
            return Autocast.Linear(fc2, nn.functional.gelu(Autocast.Linear(fc1, x))).MoveToOuterDisposeScope();
        }
    }
}
