using System.Text.Json.Serialization;

namespace MoCoV3.Models;

/// <summary>A Vision Transformer backbone (<c>arch: vit</c>): patch size, width, depth, attention heads, MLP ratio.</summary>
public sealed record VitConfig : BackboneConfig
{
    [JsonIgnore]
    public override Architecture Arch => Architecture.Vit;

    public int PatchSize { get; init; } = 16;
    public int EmbedDim { get; init; } = 384;
    public int Depth { get; init; } = 12;
    /// <summary>Attention heads per block.</summary>
    public int Heads { get; init; } = 12;
    public double MlpRatio { get; init; } = 4.0;

    internal override void Validate(InputConfig input, Action<bool, string> require)
    {
        require(EmbeddingSpec.TryParse(Embedding, out var spec),
            $"embedding must be '{EmbeddingKinds.ClassToken}' or '{EmbeddingKinds.ClassTokenAndMeanPatch}', either with " +
            $"'{EmbeddingSpec.LastBlocksSuffix}N' for the last N blocks, found '{Embedding}'");
        require(PatchSize > 0 && PatchSize <= input.ImageSize && input.ImageSize % PatchSize == 0, $"image_size {input.ImageSize} is not a multiple of patch_size {PatchSize}");
        require(EmbedDim is > 0 and <= ModelPreset.MaxWidth, $"embed_dim must be in 1..{ModelPreset.MaxWidth}, found {EmbedDim}");
        require(Heads > 0 && EmbedDim % Heads == 0, $"embed_dim {EmbedDim} is not a multiple of heads {Heads}");
        require(EmbedDim % 4 == 0, $"embed_dim {EmbedDim} must be a multiple of 4 for the 2-D sin-cos position embedding");
        require(Depth is > 0 and <= ModelPreset.MaxDepth, $"depth must be in 1..{ModelPreset.MaxDepth}, found {Depth}");
        require(spec.LastBlocks <= Depth, $"embedding '{Embedding}' reads {spec.LastBlocks} blocks, but depth is {Depth}");
        require(double.IsFinite(MlpRatio) && MlpRatio > 0 && MlpRatio * EmbedDim <= 4 * ModelPreset.MaxWidth,
            $"mlp_ratio must be positive and at most {4 * ModelPreset.MaxWidth} / embed_dim, found {MlpRatio}");
    }
}
