using System.Globalization;

namespace MoCoV3.Models;

/// <summary>
/// A parsed <see cref="BackboneConfig.Embedding"/>: what an image's embedding is made of. <c>cls</c> is the class token
/// after the final norm; <c>cls+mean</c> adds the mean of the patch tokens; a suffix <c>@lastN</c> (ViT) takes the same
/// features from each of the last N blocks, every block's tokens through the final norm (DINO's <c>n_last_blocks</c>
/// linear evaluation), concatenated <b>last block first</b>, so the first <c>D</c> (or <c>2·D</c>) numbers are always
/// the single-block embedding and a head on the class token reads the first <c>D</c>.
/// </summary>
public readonly record struct EmbeddingSpec(bool MeanPatch, int LastBlocks)
{
    /// <summary>The suffix that names how many blocks are read: <c>@last4</c>.</summary>
    public const string LastBlocksSuffix = "@last";

    /// <summary>The class token of the last block only.</summary>
    public static EmbeddingSpec ClassToken => new(false, 1);

    /// <summary>Numbers per image for a backbone of width <paramref name="dim"/>.</summary>
    public int Width(int dim) => dim * (MeanPatch ? 2 : 1) * LastBlocks;

    /// <summary>Parses <c>cls</c>, <c>cls+mean</c>, <c>cls@lastN</c> or <c>cls+mean@lastN</c> (N ≥ 1); false otherwise.</summary>
    public static bool TryParse(string? text, out EmbeddingSpec spec)
    {
        spec = ClassToken;
        if (string.IsNullOrEmpty(text)) return false;
        string features = text;
        int blocks = 1;
        int at = text.IndexOf(LastBlocksSuffix, StringComparison.Ordinal);
        if (at >= 0)
        {
            string count = text[(at + LastBlocksSuffix.Length)..];
            // NumberStyles.None: ASCII digits only (no sign, spaces or separators); at most 3 of them.
            if (count.Length > 3 || !int.TryParse(count, NumberStyles.None, CultureInfo.InvariantCulture, out blocks) || blocks < 1)
                return false;
            features = text[..at];
        }
        bool? mean = features switch
        {
            EmbeddingKinds.ClassToken => false,
            EmbeddingKinds.ClassTokenAndMeanPatch => true,
            _ => null,
        };
        if (mean is null) return false;
        spec = new EmbeddingSpec(mean.Value, blocks);
        return true;
    }

    /// <summary>Parses a value <see cref="ModelPreset.Validate"/> has accepted.</summary>
    public static EmbeddingSpec Parse(string text) =>
        TryParse(text, out var spec) ? spec : throw new FormatException($"not an embedding: '{text}'");

    public override string ToString() =>
        (MeanPatch ? EmbeddingKinds.ClassTokenAndMeanPatch : EmbeddingKinds.ClassToken) +
        (LastBlocks > 1 ? LastBlocksSuffix + LastBlocks.ToString(CultureInfo.InvariantCulture) : "");
}
