using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MoCoV3.Models;

/// <summary>
/// The ViT of MoCo v3 (paper §4-5): a standard pre-norm ViT with the paper's stabilising changes —
/// a <b>frozen random patch projection</b> (Xavier-uniform, then no gradient), a <b>fixed 2-D sin-cos
/// position embedding</b> (zero at the class token), a class token initialised N(0, 1e-6), Q/K/V
/// initialised as three separate Xavier-uniform matrices, LayerNorm eps 1e-6, no dropout, and no drop path
/// unless fine-tuning sets it (<see cref="SetDropPath"/>).
/// The output is the class token after the final norm. Parameter names follow timm
/// (<c>patch_embed.proj</c>, <c>cls_token</c>, <c>pos_embed</c>, <c>blocks.i.attn.qkv</c>, <c>norm</c>),
/// so official checkpoints map one to one.
/// </summary>
public sealed class VisionTransformer : Backbone
{
    private readonly Parameter cls_token;
    private readonly Parameter pos_embed;
    private readonly PatchEmbed patch_embed;
    private readonly ModuleList<TransformerBlock> blocks;
    private readonly LayerNorm norm;
    private readonly int dim;
    private readonly EmbeddingSpec embedding;

    public VisionTransformer(ModelPreset preset) : base(nameof(VisionTransformer))
    {
        dim = preset.Vit.EmbedDim;
        embedding = EmbeddingSpec.Parse(preset.Backbone.Embedding);
        int grid = preset.Input.ImageSize / preset.Vit.PatchSize;
        patch_embed = new PatchEmbed(preset.Input.Channels, preset.Vit.PatchSize, dim);
        cls_token = new Parameter(zeros(1, 1, dim));
        pos_embed = new Parameter(SinCosPositionEmbedding.Build(grid, grid, dim), requires_grad: false);
        blocks = new ModuleList<TransformerBlock>(
            Enumerable.Range(0, preset.Vit.Depth).Select(_ => new TransformerBlock(dim, preset.Vit.Heads, preset.Vit.MlpRatio)).ToArray());
        norm = nn.LayerNorm(dim, eps: 1e-6);
        RegisterComponents();
        InitializeWeights(preset.Input.Channels * preset.Vit.PatchSize * preset.Vit.PatchSize);
    }

    public override int FeatureDim => dim;

    public override int EmbeddingDim => embedding.Width(dim);

    public Conv2d PatchProjection => patch_embed.Projection;

    public Parameter PositionEmbedding => pos_embed;

    public Parameter ClassToken => cls_token;

    /// <summary>
    /// Sets stochastic depth for fine-tuning: block i drops its residual branches with rate <c>maxRate · i / (depth − 1)</c>
    /// (timm's linear rule, 0 at the first block). Pretraining leaves it at 0.
    /// </summary>
    public void SetDropPath(double maxRate)
    {
        if (!(maxRate is >= 0 and < 1)) throw new ArgumentOutOfRangeException(nameof(maxRate), maxRate, "drop path rate must be in [0, 1)");
        int depth = blocks.Count;
        for (int i = 0; i < depth; i++)
            blocks[i].DropPathRate = depth == 1 ? maxRate : maxRate * i / (depth - 1);
    }

    /// <summary>
    /// Data-parallel fine-tuning: the forward passes see rows [Offset, Offset + N) of a global batch of GlobalCount, and drop
    /// path draws for the whole global batch and keeps those rows (<see cref="DropPath.Rows"/>); null: the whole batch.
    /// </summary>
    public void SetDropPathRows((int Offset, int GlobalCount)? rows)
    {
        foreach (var block in blocks) block.DropPathRows = rows;
    }

    /// <summary>The stochastic-depth rate of each block, first to last.</summary>
    public IReadOnlyList<double> DropPathRates => blocks.Select(b => b.DropPathRate).ToList();

    private void InitializeWeights(int patchFanIn)
    {
        using var _ = no_grad();
        foreach (var (name, module) in blocks.named_modules())
        {
            if (module is not Linear linear) continue;
            if (name.EndsWith("attn.qkv", StringComparison.Ordinal))
            {
                // Q, K and V are three D x D matrices stacked: Xavier bound over (out/3 + in).
                double bound = Math.Sqrt(6.0 / (linear.weight!.shape[0] / 3.0 + linear.weight.shape[1]));
                nn.init.uniform_(linear.weight, -bound, bound);
            }
            else
            {
                nn.init.xavier_uniform_(linear.weight!);
            }
            nn.init.zeros_(linear.bias!);
        }
        nn.init.normal_(cls_token, std: 1e-6);

        // Random patch projection, Xavier-uniform over (C·P·P + D), then frozen (stop-gradient after it).
        var proj = patch_embed.Projection;
        double patchBound = Math.Sqrt(6.0 / (patchFanIn + dim));
        nn.init.uniform_(proj.weight!, -patchBound, patchBound);
        nn.init.zeros_(proj.bias!);
        proj.weight!.requires_grad = false;
        proj.bias!.requires_grad = false;
    }

    /// <summary>Patch tokens plus class token, position-embedded, through the blocks and the final norm: <c>[N, 1+T, D]</c>.</summary>
    public Tensor ForwardTokens(Tensor x) => ForwardLastBlocks(x, 1)[0];

    /// <summary>
    /// The token maps of the last <paramref name="count"/> blocks, each through the final norm (DINO's
    /// <c>n_last_blocks</c> linear evaluation): <c>count × [N, 1+T, D]</c>, <b>last block first</b>.
    /// </summary>
    public Tensor[] ForwardLastBlocks(Tensor x, int count)
    {
        if (count < 1 || count > blocks.Count)
            throw new ArgumentOutOfRangeException(nameof(count), count, $"must be between 1 and the depth ({blocks.Count})");
        using var scope = NewDisposeScope();
        var tokens = patch_embed.forward(x).to_type(cls_token.dtype);
        var cls = cls_token.expand(tokens.shape[0], -1, -1);
        var h = cat([cls, tokens], dim: 1) + pos_embed;
        var outputs = new Tensor[count];
        for (int i = 0; i < blocks.Count; i++)
        {
            var next = blocks[i].forward(h);
            h.Dispose();
            h = next;
            int fromLast = blocks.Count - 1 - i;
            if (fromLast < count) outputs[fromLast] = norm.forward(h).MoveToOuterDisposeScope();
        }
        return outputs;
    }

    /// <summary>The class token after the final norm: <c>[N, D]</c>.</summary>
    public override Tensor forward(Tensor x)
    {
        using var tokens = ForwardTokens(x);
        return tokens[.., 0];
    }

    /// <summary>
    /// The preset's <see cref="EmbeddingSpec"/>: the class token (with <c>cls+mean</c> ++ the mean patch token) after the
    /// final norm, and with <c>@lastN</c> the same from each of the last N blocks, last first.
    /// </summary>
    public override Tensor Embed(Tensor x)
    {
        if (embedding == EmbeddingSpec.ClassToken) return forward(x);
        using var scope = NewDisposeScope();
        var parts = new List<Tensor>();
        foreach (var tokens in ForwardLastBlocks(x, embedding.LastBlocks))
        {
            parts.Add(tokens[.., 0]);
            if (embedding.MeanPatch) parts.Add(tokens[.., 1..].mean([1]));
        }
        return cat(parts, dim: 1).MoveToOuterDisposeScope();
    }
}
