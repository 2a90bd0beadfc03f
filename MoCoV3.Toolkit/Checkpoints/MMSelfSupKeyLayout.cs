using System.Text.RegularExpressions;

namespace MoCoV3.Checkpoints;

/// <summary>
/// MMSelfSup 1.x / mmpretrain (recipe §3.2): the backbone under <c>backbone.</c>, the projector under <c>neck.</c>,
/// the predictor under <c>head.</c> (a classifier's <c>head.fc.weight/bias</c> is kept as one), the EMA copy under
/// <c>momentum_encoder.</c>. ResNet names are torchvision's; the mmcls ViT is renamed:
/// <code>
///   patch_embed.projection      ↔ patch_embed.proj
///   layers.i.ln1 / ln2          ↔ blocks.i.norm1 / norm2
///   layers.i.attn.qkv / proj    ↔ blocks.i.attn.qkv / proj
///   layers.i.ffn.layers.0.0     ↔ blocks.i.mlp.fc1
///   layers.i.ffn.layers.1       ↔ blocks.i.mlp.fc2
///   ln1 (final)                 ↔ norm
///   cls_token, pos_embed        ↔ same
/// </code>
/// Keys without a <c>backbone.</c> prefix (files written by <c>extract_backbone_weights.py</c>) are backbone keys.
/// </summary>
public sealed partial class MMSelfSupKeyLayout : KeyLayout
{
    public static readonly MMSelfSupKeyLayout Instance = new();

    private MMSelfSupKeyLayout() { }

    public override CheckpointFormat Format => CheckpointFormat.MMSelfSup;

    private static readonly (Regex From, string To)[] ToOurs =
    [
        (new(@"^patch_embed\.projection\."), "patch_embed.proj."),
        (new(@"^layers\.(\d+)\.ln1\."), "blocks.$1.norm1."),
        (new(@"^layers\.(\d+)\.ln2\."), "blocks.$1.norm2."),
        (new(@"^layers\.(\d+)\.attn\.(qkv|proj)\."), "blocks.$1.attn.$2."),
        (new(@"^layers\.(\d+)\.ffn\.layers\.0\.0\."), "blocks.$1.mlp.fc1."),
        (new(@"^layers\.(\d+)\.ffn\.layers\.1\."), "blocks.$1.mlp.fc2."),
        (new(@"^ln1\."), "norm."),
    ];

    private static readonly (Regex From, string To)[] ToMm =
    [
        (new(@"^patch_embed\.proj\."), "patch_embed.projection."),
        (new(@"^blocks\.(\d+)\.norm1\."), "layers.$1.ln1."),
        (new(@"^blocks\.(\d+)\.norm2\."), "layers.$1.ln2."),
        (new(@"^blocks\.(\d+)\.attn\.(qkv|proj)\."), "layers.$1.attn.$2."),
        (new(@"^blocks\.(\d+)\.mlp\.fc1\."), "layers.$1.ffn.layers.0.0."),
        (new(@"^blocks\.(\d+)\.mlp\.fc2\."), "layers.$1.ffn.layers.1."),
        (new(@"^norm\."), "ln1."),
    ];

    public override MappedKey Map(string key)
    {
        if (key.StartsWith("backbone.", StringComparison.Ordinal)) return new(CheckpointPart.Backbone, Rename(key["backbone.".Length..], ToOurs));
        if (key is "head.fc.weight" or "head.fc.bias") return new(CheckpointPart.ClassifierHead, key["head.fc.".Length..]);
        if (key.StartsWith("neck.", StringComparison.Ordinal)) return new(CheckpointPart.Projector, key);
        if (key.StartsWith("head.", StringComparison.Ordinal)) return new(CheckpointPart.Predictor, key);
        if (key.StartsWith("momentum_encoder.", StringComparison.Ordinal)) return new(CheckpointPart.MomentumEncoder, key);
        if (key.StartsWith("data_preprocessor.", StringComparison.Ordinal)) return new(CheckpointPart.Bookkeeping, key);
        return new(CheckpointPart.Backbone, Rename(key, ToOurs));
    }

    public override string FromBackbone(string name) => "backbone." + Rename(name, ToMm);

    public override string FromClassifier(string parameter, bool vit) => "head.fc." + parameter;

    /// <summary>A key (without <c>backbone.</c>) that only the mmcls ViT uses: <c>layers.i.ln1</c>, <c>layers.i.ffn</c>, <c>patch_embed.projection</c>.</summary>
    public static bool IsMmVitName(string key) => MmVitName().IsMatch(key);

    private static string Rename(string key, (Regex From, string To)[] rules)
    {
        foreach (var (from, to) in rules)
            if (from.IsMatch(key)) return from.Replace(key, to, 1);
        return key;
    }

    [GeneratedRegex(@"^(layers\.\d+\.(ln1|ln2|ffn)\.|patch_embed\.projection\.)")]
    private static partial Regex MmVitName();
}
