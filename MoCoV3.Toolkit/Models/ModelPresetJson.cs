using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;

namespace MoCoV3.Models;

/// <summary>
/// The JSON form of a <see cref="ModelPreset"/>: grouped, as timm splits a model's arguments from its data config —
/// <c>name</c>, <c>description</c>, <c>arch</c>, then <c>backbone</c> (only the fields of that architecture), <c>heads</c>
/// (projector and predictor), <c>recipe</c> (loss, optimiser, schedule, augmentation), <c>input</c> (size, channels,
/// normalisation) and, when the preset has any, <c>lincls</c> (linear-evaluation settings). Presets are written grouped;
/// the flat form of earlier versions (every field at the top, as checkpoints and ONNX files hold it) still reads.
/// </summary>
public sealed class ModelPresetJson : JsonConverter<ModelPreset>
{
    private static readonly string[] TopFields = ["name", "description", "arch"];
    private static readonly string[] VitBackbone = ["patch_size", "embed_dim", "depth", "heads", "mlp_ratio", "embedding"];
    private static readonly string[] ResNetBackbone = ["block", "layers", "small_stem", "zero_init_residual", "embedding"];
    private static readonly string[] Heads = ["projector_layers", "hidden_dim", "out_dim", "predictor_layers", "predictor_last_bn"];
    private static readonly string[] Recipe =
        ["temperature", "optimizer", "base_lr", "weight_decay", "momentum0", "warmup_epochs", "epochs", "batch", "crop_min", "blur_sigma_min", "blur_sigma_max"];
    private static readonly string[] Input = ["image_size", "channels", "mean", "std"];
    /// <summary>The <c>lincls</c> group's fields, each the flat field <c>lincls_NAME</c>.</summary>
    private static readonly string[] Lincls = ["base_lr", "standardize", "crop_min", "eval_crop"];
    private const string LinclsPrefix = "lincls_";
    private static readonly string[] Groups = ["backbone", "heads", "recipe", "input", "lincls"];

    public override ModelPreset Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        var node = JsonNode.Parse(ref reader) as JsonObject ?? throw new JsonException("a preset must be a JSON object");
        try
        {
            // "heads" is also the flat form's ViT head count: the grouped form is told by its other groups, or an object there.
            bool grouped = node.ContainsKey("backbone") || node.ContainsKey("recipe") || node.ContainsKey("input") || node["heads"] is JsonObject;
            var flat = grouped ? Flatten(node) : node;
            return flat.Deserialize<ModelPreset>(ModelPreset.FlatJson) ?? throw new JsonException("a preset must be a JSON object");
        }
        catch (ArgumentException e) // JsonObject refuses a repeated field when it is first looked into
        {
            throw new JsonException($"a field appears twice ({e.Message})", e);
        }
    }

    public override void Write(Utf8JsonWriter writer, ModelPreset value, JsonSerializerOptions options)
    {
        var flat = JsonSerializer.SerializeToNode(value, ModelPreset.FlatJson)!.AsObject();
        var grouped = new JsonObject();
        foreach (string field in TopFields) grouped[field] = flat[field]?.DeepClone();
        grouped["backbone"] = Group(flat, value.IsVit ? VitBackbone : ResNetBackbone);
        grouped["heads"] = Group(flat, Heads);
        grouped["recipe"] = Group(flat, Recipe);
        grouped["input"] = Group(flat, Input);
        var lincls = new JsonObject();
        foreach (string field in Lincls)
            if (flat[LinclsPrefix + field] is { } v) lincls[field] = v.DeepClone();
        if (lincls.Count > 0) grouped["lincls"] = lincls;
        grouped.WriteTo(writer);
    }

    private static JsonObject Group(JsonObject flat, string[] fields)
    {
        var group = new JsonObject();
        foreach (string field in fields) group[field] = flat[field]?.DeepClone();
        return group;
    }

    /// <summary>The flat form of a grouped preset; a field in the wrong group, or an unknown one, is an error naming it.</summary>
    private static JsonObject Flatten(JsonObject grouped)
    {
        string? arch = grouped["arch"] is JsonValue a && a.TryGetValue(out string? s) ? s : null;
        var flat = new JsonObject();
        foreach (var (key, value) in grouped)
        {
            if (TopFields.Contains(key))
            {
                flat[key] = value?.DeepClone();
                continue;
            }
            string[] fields = key switch
            {
                "backbone" => arch == "resnet" ? ResNetBackbone : arch == "vit" ? VitBackbone
                    : throw new JsonException($"'arch' must be 'vit' or 'resnet' before a backbone can be read, found {(arch is null ? "none" : $"'{arch}'")}"),
                "heads" => Heads,
                "recipe" => Recipe,
                "input" => Input,
                "lincls" => Lincls,
                _ => throw new JsonException($"unknown field '{key}': a preset has {string.Join(", ", TopFields.Concat(Groups))}"),
            };
            if (value is not JsonObject members) throw new JsonException($"'{key}' must be an object of {string.Join(", ", fields)}");
            foreach (var (field, v) in members)
            {
                if (!fields.Contains(field))
                    throw new JsonException($"unknown field '{key}.{field}': {(key == "backbone" ? $"a {arch} backbone" : $"'{key}'")} has {string.Join(", ", fields)}");
                flat[key == "lincls" ? LinclsPrefix + field : field] = v?.DeepClone();
            }
        }
        return flat;
    }
}
