namespace MoCoV3.Models;

/// <summary>The features <see cref="BackboneConfig.Embedding"/> names (optionally with <see cref="EmbeddingSpec.LastBlocksSuffix"/>).</summary>
public static class EmbeddingKinds
{
    /// <summary>The class token after the final norm (ViT), the global average pool (ResNet).</summary>
    public const string ClassToken = "cls";

    /// <summary>ViT: the class token and the mean of the patch tokens, both after the final norm, concatenated (2·D).</summary>
    public const string ClassTokenAndMeanPatch = "cls+mean";

    /// <summary>ViT: <c>cls+mean</c> from each of the last four blocks, last first (4·2·D; see <see cref="EmbeddingSpec"/>).</summary>
    public const string ClassTokenAndMeanPatchLast4 = "cls+mean@last4";
}
