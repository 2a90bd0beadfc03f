using System.Globalization;
using System.Text.Json;

namespace MoCoV3.Inference;

/// <summary>
/// The toolkit's contract in an ONNX model's <c>metadata_props</c> (keys in <see cref="OnnxMetadata"/>), read in one place:
/// the preset, the input size and channels, the mean and std the graph normalises with, what the <c>embedding</c>
/// output holds, and for classifiers the class names. A model exported by another tool has none of it
/// (<see cref="IsToolkitModel"/> is false).
/// </summary>
public sealed class ModelMetadata
{
    private ModelMetadata(IReadOnlyDictionary<string, string> all)
    {
        All = all;
    }

    /// <summary>Every <c>metadata_props</c> entry of the model.</summary>
    public IReadOnlyDictionary<string, string> All { get; }

    /// <summary>Whether the model carries the toolkit's preprocessing keys (input size, channels, mean, std).</summary>
    public bool IsToolkitModel { get; private init; }

    /// <summary>The preset's name (<c>vit-small</c>, <c>resnet50</c>, …), when known.</summary>
    public string? PresetName { get; private init; }

    /// <summary>The preset as JSON, when known.</summary>
    public string? PresetJson { get; private init; }

    /// <summary><c>vit</c> or <c>resnet</c>, when known.</summary>
    public string? Arch { get; private init; }

    public int? InputSize { get; private init; }

    public int? Channels { get; private init; }

    public IReadOnlyList<float>? Mean { get; private init; }

    public IReadOnlyList<float>? Std { get; private init; }

    /// <summary>Width D of the <c>embedding</c> output, when recorded.</summary>
    public int? EmbeddingDim { get; private init; }

    /// <summary>What the <c>embedding</c> output holds (<see cref="OnnxMetadata.Embedding"/>), when known.</summary>
    public string? Embedding { get; private init; }

    /// <summary><c>fp32</c> (also when absent), <c>fp16</c> or <c>int8-dynamic</c>.</summary>
    public string Precision { get; private init; } = "fp32";

    /// <summary>Number of classes of the <c>logits</c> output, when the model has a head.</summary>
    public int? HeadClasses { get; private init; }

    /// <summary>The class names of the <c>logits</c> output in output order, when the exporter recorded them.</summary>
    public IReadOnlyList<string>? ClassNames { get; private init; }

    /// <summary>
    /// Reads the contract from <paramref name="entries"/>. Keys that are present must be well-formed; a malformed one is an
    /// <see cref="InvalidDataException"/> that names <paramref name="source"/> and the key.
    /// </summary>
    public static ModelMetadata Read(IReadOnlyDictionary<string, string> entries, string source)
    {
        ArgumentNullException.ThrowIfNull(entries);
        ArgumentNullException.ThrowIfNull(source);
        var all = new Dictionary<string, string>(entries, StringComparer.Ordinal);
        string? Get(string key) => all.TryGetValue(key, out var v) ? v : null;

        int? Int(string key)
        {
            if (Get(key) is not { } text) return null;
            if (!int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int value) || value < 1)
                throw Bad(source, key, text, "a positive integer");
            return value;
        }

        float[]? Floats(string key)
        {
            if (Get(key) is not { } text) return null;
            var parts = text.Split(',');
            var values = new float[parts.Length];
            for (int i = 0; i < parts.Length; i++)
            {
                if (!float.TryParse(parts[i].Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out values[i]) || !float.IsFinite(values[i]))
                    throw Bad(source, key, text, "comma-separated finite numbers");
            }
            return values;
        }

        string? presetJson = Get(OnnxMetadata.Preset);
        string? presetName = null, presetEmbedding = null;
        if (presetJson is not null)
        {
            try
            {
                using var doc = JsonDocument.Parse(presetJson);
                if (doc.RootElement.ValueKind != JsonValueKind.Object) throw Bad(source, OnnxMetadata.Preset, Shorten(presetJson), "a JSON object");
                if (doc.RootElement.TryGetProperty("name", out var name) && name.ValueKind == JsonValueKind.String) presetName = name.GetString();
                // The grouped form keeps it in "backbone", the flat form of earlier versions at the top.
                var holder = doc.RootElement.TryGetProperty("backbone", out var backbone) && backbone.ValueKind == JsonValueKind.Object ? backbone : doc.RootElement;
                if (holder.TryGetProperty("embedding", out var emb) && emb.ValueKind == JsonValueKind.String) presetEmbedding = emb.GetString();
            }
            catch (JsonException e)
            {
                throw new InvalidDataException($"{source}: metadata '{OnnxMetadata.Preset}' is not JSON ({e.Message})", e);
            }
        }

        IReadOnlyList<string>? classNames = null;
        if (Get(OnnxMetadata.ClassNames) is { } namesJson)
        {
            try
            {
                classNames = JsonSerializer.Deserialize<string[]>(namesJson);
            }
            catch (JsonException e)
            {
                throw new InvalidDataException($"{source}: metadata '{OnnxMetadata.ClassNames}' is not a JSON array of strings ({e.Message})", e);
            }
            if (classNames is null || classNames.Any(n => n is null))
                throw Bad(source, OnnxMetadata.ClassNames, Shorten(namesJson), "a JSON array of strings");
        }

        var mean = Floats(OnnxMetadata.Mean);
        var std = Floats(OnnxMetadata.Std);
        int? inputSize = Int(OnnxMetadata.InputSize), channels = Int(OnnxMetadata.Channels), headClasses = Int(OnnxMetadata.HeadClasses);
        bool toolkit = inputSize is not null && channels is not null && mean is not null && std is not null;
        if (toolkit)
        {
            if (mean!.Length != channels || std!.Length != channels)
                throw new InvalidDataException($"{source}: metadata gives {channels} channels but {mean.Length} means and {std!.Length} stds");
            if (std.Any(v => v <= 0)) throw Bad(source, OnnxMetadata.Std, Get(OnnxMetadata.Std)!, "positive numbers");
        }
        if (classNames is not null && headClasses is int k && classNames.Count != k)
            throw new InvalidDataException($"{source}: metadata names {classNames.Count} classes but the head has {k}");
        string? arch = Get(OnnxMetadata.Arch);
        return new ModelMetadata(all)
        {
            IsToolkitModel = toolkit,
            PresetJson = presetJson,
            PresetName = presetName,
            Arch = arch,
            InputSize = inputSize,
            Channels = channels,
            Mean = mean,
            Std = std,
            EmbeddingDim = Int(OnnxMetadata.EmbeddingDim),
            Embedding = Get(OnnxMetadata.Embedding) ?? presetEmbedding ?? (arch switch { "vit" => "cls", "resnet" => "pool", _ => null }),
            Precision = Get(OnnxMetadata.Precision) ?? "fp32",
            HeadClasses = headClasses,
            ClassNames = classNames,
        };
    }

    /// <summary>The names of the toolkit's preprocessing keys that <see cref="All"/> lacks.</summary>
    public IReadOnlyList<string> MissingPreprocessingKeys() =>
        new[] { OnnxMetadata.InputSize, OnnxMetadata.Channels, OnnxMetadata.Mean, OnnxMetadata.Std }.Where(k => !All.ContainsKey(k)).ToArray();

    private static InvalidDataException Bad(string source, string key, string value, string expected) =>
        new($"{source}: metadata '{key}' should be {expected}, found '{Shorten(value)}'");

    private static string Shorten(string text) => text.Length <= 80 ? text : text[..77] + "...";
}
