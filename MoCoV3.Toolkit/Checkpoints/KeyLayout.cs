namespace MoCoV3.Checkpoints;

/// <summary>
/// How one external checkpoint layout names the tensors of a backbone, in both directions. Our backbone names
/// are timm's for the ViT (<c>cls_token</c>, <c>pos_embed</c>, <c>patch_embed.proj.*</c>, <c>blocks.i.norm1</c>,
/// <c>blocks.i.attn.qkv</c>, <c>blocks.i.attn.proj</c>, <c>blocks.i.norm2</c>, <c>blocks.i.mlp.fc1/fc2</c>,
/// <c>norm</c>) and torchvision's for the ResNet (<c>conv1</c>, <c>bn1</c>, <c>layerK.i.*</c>).
/// This is the one place that knows the layouts; the importer, the converter and <c>--init</c> use it.
/// </summary>
public abstract class KeyLayout
{
    public abstract CheckpointFormat Format { get; }

    /// <summary>Resolves a key of a checkpoint in this layout. Keys this layout does not know are returned as
    /// <see cref="CheckpointPart.Backbone"/> candidates under their own name, so a strict load reports them as unexpected.</summary>
    public abstract MappedKey Map(string key);

    /// <summary>The key this layout uses for one of our backbone tensors.</summary>
    public abstract string FromBackbone(string name);

    /// <summary>The key this layout uses for a classifier parameter (<c>weight</c> or <c>bias</c>) on a ViT or ResNet backbone.</summary>
    public virtual string FromClassifier(string parameter, bool vit) => (vit ? "head." : "fc.") + parameter;

    public static KeyLayout For(CheckpointFormat format) => format switch
    {
        CheckpointFormat.Toolkit => ToolkitKeyLayout.Instance,
        CheckpointFormat.Official => OfficialKeyLayout.Instance,
        CheckpointFormat.MMSelfSup => MMSelfSupKeyLayout.Instance,
        CheckpointFormat.Timm => PlainKeyLayout.Timm,
        CheckpointFormat.Torchvision => PlainKeyLayout.Torchvision,
        _ => throw new ArgumentOutOfRangeException(nameof(format), format, "unknown checkpoint format"),
    };

    /// <summary>
    /// Tells the layout of a state dict from its keys, or null when none fits: toolkit MoCo names
    /// (<c>base_encoder.backbone.</c>), official (<c>[module.]base_encoder.</c>), MMSelfSup (<c>backbone.</c>, or mmcls
    /// ViT names such as <c>layers.0.ln1</c> / <c>patch_embed.projection</c>), timm (<c>blocks.</c>, <c>cls_token</c>),
    /// torchvision (<c>conv1.</c>, <c>layer1.</c>), in that order.
    /// </summary>
    public static CheckpointFormat? Detect(IEnumerable<string> keys)
    {
        var list = keys.ToList();
        bool Any(Func<string, bool> test) => list.Any(test);
        static string Bare(string k) => k.StartsWith("module.", StringComparison.Ordinal) ? k["module.".Length..] : k;

        if (Any(k => k.StartsWith("base_encoder.backbone.", StringComparison.Ordinal))) return CheckpointFormat.Toolkit;
        if (Any(k => Bare(k).StartsWith("base_encoder.", StringComparison.Ordinal))) return CheckpointFormat.Official;
        if (Any(k => k.StartsWith("backbone.", StringComparison.Ordinal))) return CheckpointFormat.MMSelfSup;
        if (Any(k => MMSelfSupKeyLayout.IsMmVitName(Bare(k)))) return CheckpointFormat.MMSelfSup;
        if (Any(k => Bare(k) is var b && (b.StartsWith("blocks.", StringComparison.Ordinal) || b == "cls_token" || b.StartsWith("patch_embed.proj.", StringComparison.Ordinal))))
            return CheckpointFormat.Timm;
        if (Any(k => Bare(k) is var b && (b.StartsWith("conv1.", StringComparison.Ordinal) || b.StartsWith("layer1.", StringComparison.Ordinal))))
            return CheckpointFormat.Torchvision;
        return null;
    }

    private protected static string StripModule(string key) =>
        key.StartsWith("module.", StringComparison.Ordinal) ? key["module.".Length..] : key;

    /// <summary><c>head.0.weight</c> (a projector layer) rather than <c>head.weight</c> (a classifier).</summary>
    private protected static bool IsNumberedChild(string rest) =>
        rest.Length > 0 && char.IsAsciiDigit(rest[0]);
}
