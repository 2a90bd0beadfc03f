namespace MoCoV3.Checkpoints;

/// <summary>
/// facebookresearch/moco-v3 pretraining checkpoints (recipe §3.1): every key carries the DDP prefix <c>module.</c>;
/// <c>base_encoder.*</c> is the query encoder with timm (ViT) or torchvision (ResNet) names, whose projector is
/// <c>head.*</c> (ViT) or <c>fc.*</c> (ResNet); <c>momentum_encoder.*</c> has the same suffixes; <c>predictor.*</c>
/// is the predictor. A backbone import keeps only the query encoder.
/// </summary>
public sealed class OfficialKeyLayout : KeyLayout
{
    public static readonly OfficialKeyLayout Instance = new();

    private const string Base = "base_encoder.";
    private const string Momentum = "momentum_encoder.";

    private OfficialKeyLayout() { }

    public override CheckpointFormat Format => CheckpointFormat.Official;

    public override MappedKey Map(string key)
    {
        string bare = StripModule(key);
        if (bare.StartsWith(Base, StringComparison.Ordinal))
        {
            string rest = bare[Base.Length..];
            return IsProjector(rest) ? new(CheckpointPart.Projector, key) : new(CheckpointPart.Backbone, rest);
        }
        if (bare.StartsWith(Momentum, StringComparison.Ordinal)) return new(CheckpointPart.MomentumEncoder, key);
        if (bare.StartsWith("predictor.", StringComparison.Ordinal)) return new(CheckpointPart.Predictor, key);
        return new(CheckpointPart.Backbone, bare);
    }

    public override string FromBackbone(string name) => "module." + Base + name;

    /// <summary>
    /// An official key to the name of the same tensor in our whole <c>MoCo</c> model (both encoders and the
    /// predictor), or null for keys that are not part of it: <c>module.base_encoder.head.6.weight</c> →
    /// <c>base_encoder.projector.6.weight</c>, <c>module.momentum_encoder.blocks.0.norm1.weight</c> →
    /// <c>momentum_encoder.backbone.blocks.0.norm1.weight</c>.
    /// </summary>
    public static string? ToMoCo(string key)
    {
        key = StripModule(key);
        foreach (var encoder in new[] { Base, Momentum })
        {
            if (!key.StartsWith(encoder, StringComparison.Ordinal)) continue;
            string rest = key[encoder.Length..];
            foreach (var head in new[] { "head.", "fc." })
                if (rest.StartsWith(head, StringComparison.Ordinal)) return encoder + "projector." + rest[head.Length..];
            return encoder + "backbone." + rest;
        }
        return key.StartsWith("predictor.", StringComparison.Ordinal) ? key : null;
    }

    private static bool IsProjector(string rest) =>
        (rest.StartsWith("head.", StringComparison.Ordinal) && IsNumberedChild(rest["head.".Length..]))
        || (rest.StartsWith("fc.", StringComparison.Ordinal) && IsNumberedChild(rest["fc.".Length..]));
}
