using System.Text.Json.Serialization;

namespace MoCoV3.Models;

/// <summary>
/// The <c>backbone</c> group of a <see cref="ModelPreset"/>: the encoder's architecture (timm's <c>model_args</c>), one record
/// per family — <see cref="VitConfig"/> or <see cref="ResNetConfig"/> — so a preset carries only its own family's fields.
/// </summary>
public abstract record BackboneConfig
{
    /// <summary>The family this record describes; JSON's <c>arch</c>.</summary>
    [JsonIgnore]
    public abstract Architecture Arch { get; }

    /// <summary>
    /// What the exported encoder (and kNN, and the probe) uses as the image's embedding: <c>cls</c>, the class token after
    /// the final norm (the paper's linear-eval feature; a ResNet's pooled features), or for a ViT <c>cls+mean</c>, the class
    /// token concatenated with the mean of the patch tokens after the final norm (2·D wide; the pooled features DINO's
    /// linear evaluation adds), either one with <c>@lastN</c> to read the last N blocks (see <see cref="EmbeddingSpec"/>).
    /// Pretraining always uses the class token; this only chooses the features handed downstream.
    /// </summary>
    [JsonPropertyOrder(1)] // after the family's own fields
    public string Embedding { get; init; } = EmbeddingKinds.ClassToken;

    /// <summary>Checks the fields against the input they will see; <paramref name="require"/> reports a failed check.</summary>
    internal abstract void Validate(InputConfig input, Action<bool, string> require);
}
