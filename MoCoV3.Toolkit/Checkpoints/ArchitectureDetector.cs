using System.Text.RegularExpressions;
using MoCoV3.Models;

namespace MoCoV3.Checkpoints;

/// <summary>
/// Picks the preset whose backbone a set of tensor shapes (our names) describes. A ViT is told by its patch
/// projection <c>[D, C, P, P]</c>, <c>pos_embed [1, 1 + (S/P)², D]</c>, the number of blocks and the MLP width; a
/// ResNet by its stem (7x7 or small 3x3), channels, block type (<c>conv3</c> = bottleneck) and blocks per stage.
/// The number of attention heads leaves no trace in the weights, so it comes from the preset.
/// The choice is only a selection: the importer then checks every name and shape against the built model.
/// </summary>
public static partial class ArchitectureDetector
{
    /// <summary>The single matching preset; otherwise an <see cref="InvalidDataException"/> that says what was found and which presets were tried.</summary>
    public static ModelPreset Detect(IReadOnlyDictionary<string, long[]> shapes, IEnumerable<ModelPreset> presets, string source)
    {
        var candidates = presets.ToList();
        string found;
        List<ModelPreset> matches;
        if (shapes.TryGetValue("patch_embed.proj.weight", out var proj) && proj.Length == 4)
        {
            int depth = CountIndices(shapes.Keys, BlockIndex());
            long tokens = shapes.TryGetValue("pos_embed", out var pos) && pos.Length == 3 ? pos[1] : -1;
            long hidden = shapes.TryGetValue("blocks.0.mlp.fc1.weight", out var fc1) ? fc1[0] : -1;
            long grid = (long)Math.Round(Math.Sqrt(Math.Max(tokens - 1, 0)));
            found = $"ViT: embed_dim {proj[0]}, depth {depth}, patch {proj[2]}, {proj[1]} channel(s), {tokens} tokens " +
                    $"({(grid * grid == tokens - 1 ? $"{grid * proj[2]} px" : "not a square grid")}), mlp width {hidden}";
            matches = candidates.Where(p => p.Backbone is VitConfig vit && vit.EmbedDim == proj[0] && p.Input.Channels == proj[1] && vit.PatchSize == proj[2]
                                            && vit.Depth == depth && Math.Pow(p.Input.ImageSize / vit.PatchSize, 2) + 1 == tokens
                                            && (long)(vit.EmbedDim * vit.MlpRatio) == hidden).ToList();
        }
        else if (shapes.TryGetValue("conv1.weight", out var stem) && stem.Length == 4)
        {
            bool bottleneck = shapes.ContainsKey("layer1.0.conv3.weight");
            int[] layers = Enumerable.Range(1, 4).Select(l => CountIndices(shapes.Keys, new Regex($@"^layer{l}\.(\d+)\."))).ToArray();
            bool small = stem[2] == 3;
            found = $"ResNet: {(bottleneck ? "bottleneck" : "basic")} blocks [{string.Join(",", layers)}], {stem[2]}x{stem[3]} stem, {stem[1]} channel(s)";
            matches = candidates.Where(p => p.Backbone is ResNetConfig resnet && (resnet.Block == ResNetBlock.Bottleneck) == bottleneck
                                            && resnet.Layers.SequenceEqual(layers) && resnet.SmallStem == small && p.Input.Channels == stem[1]).ToList();
        }
        else
        {
            throw new InvalidDataException(
                $"{source}: cannot tell the architecture: no patch_embed.proj.weight (ViT) or conv1.weight (ResNet) among the backbone keys " +
                $"({string.Join(", ", shapes.Keys.Order(StringComparer.Ordinal).Take(8))}{(shapes.Count > 8 ? ", …" : "")}); pass --arch");
        }

        if (matches.Count == 1) return matches[0];
        if (matches.Count > 1)
            throw new InvalidDataException($"{source}: {found} matches several presets ({string.Join(", ", matches.Select(p => p.Name))}); pass --arch");
        throw new InvalidDataException(
            $"{source}: no preset matches this backbone — found {found}; tried {string.Join("; ", candidates.Select(Describe))}. " +
            "Pass --arch with a preset JSON that describes it");
    }

    /// <summary>The numbers of a preset that the detector compares.</summary>
    public static string Describe(ModelPreset p) => p.Backbone switch
    {
        VitConfig vit => $"{p.Name} (ViT {vit.EmbedDim}d x{vit.Depth}, patch {vit.PatchSize}, {p.Input.ImageSize} px, {p.Input.Channels} ch)",
        ResNetConfig resnet => $"{p.Name} (ResNet {resnet.Block.Name()} [{string.Join(",", resnet.Layers)}], {(resnet.SmallStem ? "3x3" : "7x7")} stem, {p.Input.Channels} ch)",
        _ => throw new NotSupportedException(p.Backbone.GetType().Name),
    };

    private static int CountIndices(IEnumerable<string> keys, Regex pattern) =>
        keys.Select(k => pattern.Match(k)).Where(m => m.Success).Select(m => int.Parse(m.Groups[1].Value)).Distinct().Count();

    [GeneratedRegex(@"^blocks\.(\d+)\.")]
    private static partial Regex BlockIndex();
}
