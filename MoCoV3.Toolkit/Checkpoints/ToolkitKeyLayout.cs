namespace MoCoV3.Checkpoints;

/// <summary>Our MoCo state dict: <c>base_encoder.backbone.*</c>, <c>base_encoder.projector.*</c>, <c>momentum_encoder.*</c>, <c>predictor.*</c>.</summary>
public sealed class ToolkitKeyLayout : KeyLayout
{
    public static readonly ToolkitKeyLayout Instance = new();

    private ToolkitKeyLayout() { }

    public override CheckpointFormat Format => CheckpointFormat.Toolkit;

    public override MappedKey Map(string key)
    {
        const string backbone = "base_encoder.backbone.";
        if (key.StartsWith(backbone, StringComparison.Ordinal)) return new(CheckpointPart.Backbone, key[backbone.Length..]);
        if (key.StartsWith("base_encoder.projector.", StringComparison.Ordinal)) return new(CheckpointPart.Projector, key);
        if (key.StartsWith("momentum_encoder.", StringComparison.Ordinal)) return new(CheckpointPart.MomentumEncoder, key);
        if (key.StartsWith("predictor.", StringComparison.Ordinal)) return new(CheckpointPart.Predictor, key);
        return new(CheckpointPart.Backbone, key);
    }

    public override string FromBackbone(string name) => "base_encoder.backbone." + name;
}
