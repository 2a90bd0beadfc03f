namespace MoCoV3.Checkpoints;

/// <summary>
/// A flat backbone state dict that already uses our names: timm's ViT (classifier <c>head.weight/bias</c>) or
/// torchvision's ResNet (classifier <c>fc.weight/bias</c>). A DDP <c>module.</c> prefix (as in the official
/// linear-eval checkpoints) is dropped; numbered <c>head.N.*</c> / <c>fc.N.*</c> keys are a MoCo projector.
/// </summary>
public sealed class PlainKeyLayout : KeyLayout
{
    public static readonly PlainKeyLayout Timm = new(CheckpointFormat.Timm);
    public static readonly PlainKeyLayout Torchvision = new(CheckpointFormat.Torchvision);

    private PlainKeyLayout(CheckpointFormat format) => Format = format;

    public override CheckpointFormat Format { get; }

    public override MappedKey Map(string key)
    {
        key = StripModule(key);
        foreach (var head in new[] { "head.", "fc." })
        {
            if (!key.StartsWith(head, StringComparison.Ordinal)) continue;
            string rest = key[head.Length..];
            if (rest is "weight" or "bias") return new(CheckpointPart.ClassifierHead, rest);
            if (IsNumberedChild(rest)) return new(CheckpointPart.Projector, key);
        }
        return new(CheckpointPart.Backbone, key);
    }

    public override string FromBackbone(string name) => name;
}
