using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;

namespace MoCoV3.Models;

/// <summary>
/// A named architecture plus its MoCo v3 pretraining recipe, stored as JSON in <c>models/NAME.json</c>.
/// Presets are data: every number a run depends on is here, and the run's <c>config.json</c> records the
/// preset it actually used after command-line overrides. The JSON groups the fields (<see cref="ModelPresetJson"/>:
/// backbone, heads, recipe, input, lincls); <see cref="Parse(ReadOnlySpan{byte}, string)"/> reads either form and validates.
/// </summary>
/// <summary>
/// A named architecture plus its MoCo v3 pretraining recipe, stored as JSON in <c>models/NAME.json</c>.
/// Presets are data: every number a run depends on is here, and the run's <c>config.json</c> records the
/// preset it actually used after command-line overrides. The fields come in groups, as timm splits a model's arguments
/// from its data config: <see cref="Backbone"/> (one record per architecture), <see cref="Heads"/>, <see cref="Recipe"/>,
/// <see cref="Input"/> and <see cref="Lincls"/>. <see cref="Parse(ReadOnlySpan{byte}, string)"/> reads the JSON
/// (<see cref="ModelPresetJson"/>; also the flat form of earlier versions) and validates it.
/// </summary>
[JsonConverter(typeof(ModelPresetJson))]
public sealed record ModelPreset
{
    public required string Name { get; init; }
    public string Description { get; init; } = "";

    /// <summary>The encoder: a <see cref="VitConfig"/> or a <see cref="ResNetConfig"/>.</summary>
    public required BackboneConfig Backbone { get; init; }
    /// <summary>The projector and predictor.</summary>
    public HeadsConfig Heads { get; init; } = new();
    /// <summary>The pretraining recipe: loss, optimiser, schedule, augmentation ranges.</summary>
    public RecipeConfig Recipe { get; init; } = new();
    /// <summary>Image size, channels and normalisation.</summary>
    public required InputConfig Input { get; init; }
    /// <summary>Linear-evaluation settings that differ from the official recipe (none by default).</summary>
    public LinclsConfig Lincls { get; init; } = new();

    public Architecture Arch => Backbone.Arch;
    public bool IsVit => Backbone is VitConfig;

    /// <summary>The ViT backbone; an <see cref="InvalidOperationException"/> for a ResNet preset.</summary>
    public VitConfig Vit => Backbone as VitConfig ?? throw new InvalidOperationException($"preset '{Name}' is a {Arch.Name()}, not a ViT");

    /// <summary>The ResNet backbone; an <see cref="InvalidOperationException"/> for a ViT preset.</summary>
    public ResNetConfig ResNet => Backbone as ResNetConfig ?? throw new InvalidOperationException($"preset '{Name}' is a {Arch.Name()}, not a ResNet");

    /// <summary>This preset with another embedding (<see cref="BackboneConfig.Embedding"/>).</summary>
    public ModelPreset WithEmbedding(string embedding) => this with { Backbone = Backbone with { Embedding = embedding } };

    /// <summary>This preset with its ViT backbone changed: <c>preset.WithVit(vit =&gt; vit with { Depth = 6 })</c>.</summary>
    public ModelPreset WithVit(Func<VitConfig, VitConfig> change) => this with { Backbone = change(Vit) };

    /// <summary>This preset with its ResNet backbone changed.</summary>
    public ModelPreset WithResNet(Func<ResNetConfig, ResNetConfig> change) => this with { Backbone = change(ResNet) };

    /// <summary>This preset with its heads changed.</summary>
    public ModelPreset WithHeads(Func<HeadsConfig, HeadsConfig> change) => this with { Heads = change(Heads) };

    /// <summary>This preset with its recipe changed: <c>preset.WithRecipe(recipe =&gt; recipe with { Batch = 64 })</c>.</summary>
    public ModelPreset WithRecipe(Func<RecipeConfig, RecipeConfig> change) => this with { Recipe = change(Recipe) };

    /// <summary>This preset with its input changed.</summary>
    public ModelPreset WithInput(Func<InputConfig, InputConfig> change) => this with { Input = change(Input) };

    /// <summary>This preset with its linear-evaluation settings changed.</summary>
    public ModelPreset WithLincls(Func<LinclsConfig, LinclsConfig> change) => this with { Lincls = change(Lincls) };

    /// <summary>
    /// The JSON fields (<c>group.field</c>) in which <paramref name="other"/> trains differently from this preset: everything
    /// but the description and the <c>lincls</c> group, so a checkpoint saved before a shipped preset gained such a field
    /// still matches it.
    /// </summary>
    public IReadOnlyList<string> TrainingDifferences(ModelPreset other)
    {
        ArgumentNullException.ThrowIfNull(other);
        var mine = ModelPresetJson.Fields(this);
        var theirs = ModelPresetJson.Fields(other);
        return mine.Keys.Union(theirs.Keys)
            .Where(key => key != "description" && !key.StartsWith("lincls.", StringComparison.Ordinal)
                          && !JsonNode.DeepEquals(mine.GetValueOrDefault(key), theirs.GetValueOrDefault(key)))
            .ToList();
    }

    /// <summary>The toolkit's JSON settings: snake_case, comments allowed, unknown fields refused; presets grouped.</summary>
    public static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        WriteIndented = true,
        ReadCommentHandling = JsonCommentHandling.Skip,
        AllowTrailingCommas = true,
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
        DefaultIgnoreCondition = JsonIgnoreCondition.Never,
    };

    /// <summary>
    /// Reads a preset from JSON (grouped, or the flat form of earlier versions) and validates it; every error is an
    /// <see cref="InvalidDataException"/> naming <paramref name="source"/> and what is wrong.
    /// </summary>
    public static ModelPreset Parse(ReadOnlySpan<byte> json, string source)
    {
        ModelPreset? preset;
        try
        {
            preset = JsonSerializer.Deserialize<ModelPreset>(json, Json);
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{source}: invalid preset JSON{(e.Path is null ? "" : $" at {e.Path}")}{(e.LineNumber is null ? "" : $" (line {e.LineNumber})")}: {e.Message}", e);
        }
        if (preset is null) throw new InvalidDataException($"{source}: empty preset");
        preset.Validate(source);
        return preset;
    }

    /// <inheritdoc cref="Parse(ReadOnlySpan{byte}, string)"/>
    public static ModelPreset Parse(string json, string source) => Parse(System.Text.Encoding.UTF8.GetBytes(json), source);

    /// <summary>The largest width accepted for <c>embed_dim</c>, <c>hidden_dim</c> and <c>out_dim</c>.</summary>
    public const int MaxWidth = 16384;

    /// <summary>The most transformer blocks, blocks per ResNet stage, or head layers accepted.</summary>
    public const int MaxDepth = 128;

    /// <summary>The largest batch accepted.</summary>
    public const int MaxBatch = 1 << 20;

    /// <summary>
    /// Checks that the fields describe a model that can be built, within bounds that keep a corrupt or hostile file from
    /// asking for an absurd allocation (widths up to <see cref="MaxWidth"/>, depths up to <see cref="MaxDepth"/>); throws
    /// an <see cref="InvalidDataException"/> naming <paramref name="source"/>, the preset and the field.
    /// </summary>
    public void Validate(string source)
    {
        void Require(bool ok, string what)
        {
            if (!ok) throw new InvalidDataException($"{source}: preset '{Name}': {what}");
        }
        // JSON can hold null where the record cannot: check before anything is dereferenced.
        Require(!string.IsNullOrEmpty(Name) && Name.Length <= 200 && !Name.Any(char.IsControl), "name must be 1 to 200 printable characters");
        Require(Description is not null, "description must be a string, found null");
        Require(Backbone is not null && Heads is not null && Recipe is not null && Input is not null && Lincls is not null,
            "backbone, heads, recipe, input and lincls must be objects");
        Input!.Validate(Require);
        Backbone!.Validate(Input, Require);
        Heads!.Validate(Require);
        Recipe!.Validate(Require);
        Lincls!.Validate(Require);
    }
}
