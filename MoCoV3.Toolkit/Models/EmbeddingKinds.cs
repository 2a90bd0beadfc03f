namespace MoCoV3.Models;

/// <summary>The values of <see cref="ModelPreset.Embedding"/>.</summary>
public static class EmbeddingKinds
{
    /// <summary>The class token after the final norm (ViT), the global average pool (ResNet).</summary>
    public const string ClassToken = "cls";

    /// <summary>ViT: the class token and the mean of the patch tokens, both after the final norm, concatenated (2·D).</summary>
    public const string ClassTokenAndMeanPatch = "cls+mean";
}
