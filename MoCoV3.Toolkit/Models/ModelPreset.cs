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
public sealed record ModelPreset
{
    public required string Name { get; init; }
    public string Description { get; init; } = "";

    public required Architecture Arch { get; init; }
    public required int ImageSize { get; init; }
    public int Channels { get; init; } = 3;

    // ViT
    public int PatchSize { get; init; } = 16;
    public int EmbedDim { get; init; } = 384;
    public int Depth { get; init; } = 12;
    public int Heads { get; init; } = 12;
    public double MlpRatio { get; init; } = 4.0;
    /// <summary>
    /// What the exported encoder (and kNN, and the probe) uses as the image's embedding: <c>cls</c>, the class token after
    /// the final norm (the paper's linear-eval feature), or <c>cls+mean</c>, the class token concatenated with the mean of
    /// the patch tokens after the final norm (2·D wide; the pooled features DINO's linear evaluation adds), either one
    /// with <c>@lastN</c> to read the last N blocks (see <see cref="EmbeddingSpec"/>). Pretraining always uses the class
    /// token; this only chooses the features handed downstream.
    /// </summary>
    public string Embedding { get; init; } = EmbeddingKinds.ClassToken;

    // ResNet
    public ResNetBlock Block { get; init; } = ResNetBlock.Bottleneck;
    public int[] Layers { get; init; } = [3, 4, 6, 3];
    /// <summary>3x3 stride-1 stem without max-pool, for 28-32 px images.</summary>
    public bool SmallStem { get; init; }
    public bool ZeroInitResidual { get; init; } = true;

    // Heads (official builder: bias-free Linear, BN+ReLU hidden layers)
    public int ProjectorLayers { get; init; } = 3;
    public int HiddenDim { get; init; } = 4096;
    public int OutDim { get; init; } = 256;
    public int PredictorLayers { get; init; } = 2;
    /// <summary>ViT: the predictor ends in a non-affine BN; ResNet: it does not.</summary>
    public bool PredictorLastBn { get; init; } = true;

    // Recipe
    public double Temperature { get; init; } = 0.2;
    public OptimizerKind Optimizer { get; init; } = OptimizerKind.AdamW;
    /// <summary>lr = BaseLr x batch / 256.</summary>
    public double BaseLr { get; init; } = 1.5e-4;
    public double WeightDecay { get; init; } = 0.1;
    public double Momentum0 { get; init; } = 0.99;
    public double WarmupEpochs { get; init; } = 40;
    public double Epochs { get; init; } = 300;
    public int Batch { get; init; } = 4096;
    public double CropMin { get; init; } = 0.08;
    /// <summary>Largest Gaussian-blur sigma in pixels at <see cref="ImageSize"/> (BYOL: 2.0 at 224).</summary>
    public double BlurSigmaMax { get; init; } = 2.0;
    public double BlurSigmaMin { get; init; } = 0.1;
    public double[] Mean { get; init; } = [0.485, 0.456, 0.406];
    public double[] Std { get; init; } = [0.229, 0.224, 0.225];

    // Evaluation
    /// <summary>
    /// The base learning rate of linear evaluation (<c>mocov3 lincls</c>: lr = this × batch / 256), when the preset's
    /// features want another than the official recipe's (3 for a ViT, 0.1 for a ResNet: moco-v3's
    /// <c>main_lincls.py</c> on ImageNet). Null (the JSON field absent) keeps the official value; written to JSON only when set.
    /// </summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public double? LinclsBaseLr { get; init; }

    /// <summary>
    /// Linear evaluation standardises the frozen features before the head (<c>mocov3 lincls</c>; see
    /// <c>LinclsOptions.Standardize</c>). Null (absent) keeps the official protocol (no standardisation).
    /// </summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public bool? LinclsStandardize { get; init; }

    /// <summary>
    /// Linear evaluation's random-resized-crop minimum area (official: 0.08) and test centre-crop share (official: 0.875,
    /// Resize 256 / CenterCrop 224), when the preset's images want others (28-px Fashion-MNIST loses the garment's edges
    /// to them). Null (absent) keeps the official values.
    /// </summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public double? LinclsCropMin { get; init; }

    /// <inheritdoc cref="LinclsCropMin"/>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public double? LinclsEvalCrop { get; init; }

    /// <summary>Fields that describe evaluation or documentation only: a run with other values trains the same model.</summary>
    private static readonly HashSet<string> NonTrainingFields = ["description", "lincls_base_lr", "lincls_standardize", "lincls_crop_min", "lincls_eval_crop"];

    /// <summary>
    /// The JSON fields (snake_case) in which <paramref name="other"/> trains differently from this preset: everything but the
    /// description and the linear-evaluation settings, so a checkpoint saved before a shipped preset gained such a field
    /// still matches it.
    /// </summary>
    public IReadOnlyList<string> TrainingDifferences(ModelPreset other)
    {
        ArgumentNullException.ThrowIfNull(other);
        var mine = JsonSerializer.SerializeToNode(this, FlatJson)!.AsObject();
        var theirs = JsonSerializer.SerializeToNode(other, FlatJson)!.AsObject();
        return mine.Select(kv => kv.Key).Union(theirs.Select(kv => kv.Key))
            .Where(key => !NonTrainingFields.Contains(key) && !JsonNode.DeepEquals(mine[key], theirs[key]))
            .ToList();
    }

    /// <summary>The largest <see cref="LinclsBaseLr"/> accepted.</summary>
    public const double MaxLinclsBaseLr = 1000;

    public bool IsVit => Arch == Architecture.Vit;

    /// <summary>The toolkit's JSON settings (snake_case, comments allowed, unknown fields refused); presets in the grouped form.</summary>
    public static readonly JsonSerializerOptions Json = Options(grouped: true);

    /// <summary>The flat form of earlier versions (every field at the top): what <see cref="ModelPresetJson"/> reads through.</summary>
    internal static readonly JsonSerializerOptions FlatJson = Options(grouped: false);

    private static JsonSerializerOptions Options(bool grouped)
    {
        var options = new JsonSerializerOptions
        {
            PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
            WriteIndented = true,
            ReadCommentHandling = JsonCommentHandling.Skip,
            AllowTrailingCommas = true,
            UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
            DefaultIgnoreCondition = JsonIgnoreCondition.Never,
        };
        if (grouped) options.Converters.Add(new ModelPresetJson());
        return options;
    }

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
        Require(Enum.IsDefined(Arch), JsonEnum.Expected<Architecture>("arch", Arch.ToString()));
        Require(ImageSize is > 0 and <= 4096, $"image_size must be in 1..4096, found {ImageSize}");
        Require(Channels is 1 or 3, $"channels must be 1 or 3, found {Channels}");
        Require(Embedding is EmbeddingKinds.ClassToken || (IsVit && EmbeddingSpec.TryParse(Embedding, out _)),
            $"embedding must be '{EmbeddingKinds.ClassToken}'" +
            (IsVit ? $" or '{EmbeddingKinds.ClassTokenAndMeanPatch}', either with '{EmbeddingSpec.LastBlocksSuffix}N' for the last N blocks" : " for a ResNet") +
            $", found '{Embedding}'");
        if (IsVit)
        {
            Require(PatchSize > 0 && PatchSize <= ImageSize && ImageSize % PatchSize == 0, $"image_size {ImageSize} is not a multiple of patch_size {PatchSize}");
            Require(EmbedDim is > 0 and <= MaxWidth, $"embed_dim must be in 1..{MaxWidth}, found {EmbedDim}");
            Require(Heads > 0 && EmbedDim % Heads == 0, $"embed_dim {EmbedDim} is not a multiple of heads {Heads}");
            Require(EmbedDim % 4 == 0, $"embed_dim {EmbedDim} must be a multiple of 4 for the 2-D sin-cos position embedding");
            Require(Depth is > 0 and <= MaxDepth, $"depth must be in 1..{MaxDepth}, found {Depth}");
            int lastBlocks = EmbeddingSpec.Parse(Embedding).LastBlocks;
            Require(lastBlocks <= Depth, $"embedding '{Embedding}' reads {lastBlocks} blocks, but depth is {Depth}");
            Require(double.IsFinite(MlpRatio) && MlpRatio > 0 && MlpRatio * EmbedDim <= 4 * MaxWidth, $"mlp_ratio must be positive and at most {4 * MaxWidth} / embed_dim, found {MlpRatio}");
        }
        else
        {
            Require(Enum.IsDefined(Block), JsonEnum.Expected<ResNetBlock>("block", Block.ToString()));
            Require(Layers is { Length: 4 } && Layers.All(l => l is > 0 and <= MaxDepth), $"layers must be four block counts in 1..{MaxDepth}");
        }
        Require(ProjectorLayers is >= 1 and <= MaxDepth && PredictorLayers is >= 1 and <= MaxDepth, $"projector_layers and predictor_layers must be in 1..{MaxDepth}");
        Require(HiddenDim is > 0 and <= MaxWidth && OutDim is > 0 and <= MaxWidth, $"hidden_dim and out_dim must be in 1..{MaxWidth}");
        Require(double.IsFinite(Temperature) && Temperature > 0, $"temperature must be positive, found {Temperature}");
        Require(Enum.IsDefined(Optimizer), JsonEnum.Expected<OptimizerKind>("optimizer", Optimizer.ToString()));
        Require(double.IsFinite(BaseLr) && BaseLr >= 0 && double.IsFinite(WeightDecay) && WeightDecay >= 0, "base_lr and weight_decay must be finite and not negative");
        Require(Momentum0 is >= 0 and <= 1, $"momentum0 must be in [0, 1], found {Momentum0}");
        Require(double.IsFinite(Epochs) && Epochs > 0 && double.IsFinite(WarmupEpochs) && WarmupEpochs >= 0, "epochs must be positive and warmup_epochs not negative, both finite");
        Require(Batch is > 0 and <= MaxBatch, $"batch must be in 1..{MaxBatch}, found {Batch}");
        Require(CropMin is > 0 and <= 1, $"crop_min must be in (0, 1], found {CropMin}");
        Require(BlurSigmaMin is >= 0 and <= 1000 && BlurSigmaMax is >= 0 and <= 1000, "blur_sigma_min and blur_sigma_max must be in [0, 1000]");
        Require(Mean is not null && Std is not null && Mean.Length == Channels && Std.Length == Channels, $"mean and std must have {Channels} values");
        Require(Mean!.All(double.IsFinite) && Std!.All(s => double.IsFinite(s) && s > 0), "mean values must be finite and std values positive");
        Require(LinclsBaseLr is null || (double.IsFinite(LinclsBaseLr.Value) && LinclsBaseLr.Value is > 0 and <= MaxLinclsBaseLr),
            $"lincls_base_lr must be in (0, {MaxLinclsBaseLr}] when given, found {LinclsBaseLr}");
        Require(LinclsCropMin is null or > 0 and <= 1, $"lincls_crop_min must be in (0, 1] when given, found {LinclsCropMin}");
        Require(LinclsEvalCrop is null or > 0 and <= 1, $"lincls_eval_crop must be in (0, 1] when given, found {LinclsEvalCrop}");
    }
}
