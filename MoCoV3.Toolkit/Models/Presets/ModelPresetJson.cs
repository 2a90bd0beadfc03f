using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;

namespace MoCoV3.Models;

/// <summary>
/// The JSON form of a <see cref="ModelPreset"/>: <c>name</c>, <c>description</c>, <c>arch</c>, then one object per group —
/// <c>backbone</c> (only the fields of that architecture), <c>heads</c>, <c>recipe</c>, <c>input</c> and, when the preset has
/// any, <c>lincls</c> — each the snake_case form of its record. The flat form of earlier versions (every field of both
/// architectures at the top, linear-evaluation fields as <c>lincls_NAME</c>, as older checkpoints and ONNX files hold it)
/// still reads. A field in the wrong group, or an unknown one, is an error naming it.
/// </summary>
public sealed class ModelPresetJson : JsonConverter<ModelPreset>
{
    private static readonly string[] TopFields = ["name", "description", "arch"];
    private static readonly string[] Groups = ["backbone", "heads", "recipe", "input", "lincls"];
    private const string FlatLinclsPrefix = "lincls_";

    /// <summary>The JSON fields of a group's record, in order.</summary>
    private static string[] FieldsOf(Type group) =>
        ModelPreset.Json.GetTypeInfo(group).Properties.Where(p => p.Set is not null).OrderBy(p => p.Order).Select(p => p.Name).ToArray();

    private static readonly string[] VitFields = FieldsOf(typeof(VitConfig));
    private static readonly string[] ResNetFields = FieldsOf(typeof(ResNetConfig));
    private static readonly string[] HeadsFields = FieldsOf(typeof(HeadsConfig));
    private static readonly string[] RecipeFields = FieldsOf(typeof(RecipeConfig));
    private static readonly string[] InputFields = FieldsOf(typeof(InputConfig));
    private static readonly string[] LinclsFields = FieldsOf(typeof(LinclsConfig));

    private static string[] GroupFields(string group, Architecture? arch) => group switch
    {
        "backbone" => arch switch
        {
            Architecture.Vit => VitFields,
            Architecture.ResNet => ResNetFields,
            _ => throw new JsonException("'arch' must be 'vit' or 'resnet' before a backbone can be read, found none"),
        },
        "heads" => HeadsFields,
        "recipe" => RecipeFields,
        "input" => InputFields,
        "lincls" => LinclsFields,
        _ => throw new JsonException($"unknown field '{group}': a preset has {string.Join(", ", TopFields.Concat(Groups))}"),
    };

    public override ModelPreset Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        var node = JsonNode.Parse(ref reader) as JsonObject ?? throw new JsonException("a preset must be a JSON object");
        try
        {
            // "heads" is also the flat form's ViT head count: the grouped form is told by its other groups, or an object there.
            bool grouped = node.ContainsKey("backbone") || node.ContainsKey("recipe") || node.ContainsKey("input") || node["heads"] is JsonObject;
            var arch = ReadArch(node);
            var groups = grouped ? CheckGrouped(node, arch) : Group(node, arch);
            T Read<T>(string group) where T : new() => groups[group] is { } g ? Deserialize<T>(g, group) : new T();
            var input = Deserialize<InputConfig>(groups["input"] ?? [], "input");
            return new ModelPreset
            {
                Name = node["name"]?.Deserialize<string>(ModelPreset.Json)!,
                Description = node.ContainsKey("description") ? node["description"]?.Deserialize<string>(ModelPreset.Json)! : "",
                Backbone = arch == Architecture.Vit ? Read<VitConfig>("backbone") : Read<ResNetConfig>("backbone"),
                Heads = Read<HeadsConfig>("heads"),
                Recipe = Read<RecipeConfig>("recipe"),
                Input = input,
                Lincls = Read<LinclsConfig>("lincls"),
            };
        }
        catch (ArgumentException e) // JsonObject refuses a repeated field when it is first looked into
        {
            throw new JsonException($"a field appears twice ({e.Message})", e);
        }
    }

    /// <summary>One group's record; an error names the field by its place in the preset (<c>$.lincls.base_lr</c>).</summary>
    private static T Deserialize<T>(JsonObject group, string name)
    {
        try
        {
            return group.Deserialize<T>(ModelPreset.Json)!;
        }
        catch (JsonException e)
        {
            string message = e.Message;
            int cut = message.IndexOf(" Path: ", StringComparison.Ordinal);
            if (cut > 0) message = message[..cut];
            string? path = e.Path is null ? null : "$." + name + e.Path.TrimStart('$');
            throw new JsonException(message, path, null, null, e);
        }
    }

    private static Architecture ReadArch(JsonObject node)
    {
        string? arch = node["arch"] is JsonValue a && a.TryGetValue(out string? s) ? s : null;
        return arch switch
        {
            "vit" => Architecture.Vit,
            "resnet" => Architecture.ResNet,
            _ => throw new JsonException($"'arch' must be 'vit' or 'resnet' before a backbone can be read, found {(arch is null ? "none" : $"'{arch}'")}"),
        };
    }

    /// <summary>The groups of a grouped preset, each checked for fields that belong elsewhere.</summary>
    private static Dictionary<string, JsonObject?> CheckGrouped(JsonObject node, Architecture arch)
    {
        var groups = Groups.ToDictionary(g => g, _ => (JsonObject?)null);
        foreach (var (key, value) in node)
        {
            if (TopFields.Contains(key)) continue;
            string[] fields = GroupFields(key, arch);
            if (value is not JsonObject members) throw new JsonException($"'{key}' must be an object of {string.Join(", ", fields)}");
            foreach (var (field, _) in members)
                if (!fields.Contains(field))
                    throw new JsonException($"unknown field '{key}.{field}': {(key == "backbone" ? $"a {arch.Name()} backbone" : $"'{key}'")} has {string.Join(", ", fields)}");
            groups[key] = members;
        }
        return groups;
    }

    /// <summary>The groups of a flat preset; the other architecture's fields, which the flat form carried too, are dropped.</summary>
    private static Dictionary<string, JsonObject?> Group(JsonObject flat, Architecture arch)
    {
        var groups = Groups.ToDictionary(g => g, _ => (JsonObject?)new JsonObject());
        string[] otherBackbone = arch == Architecture.Vit ? ResNetFields : VitFields;
        foreach (var (key, value) in flat)
        {
            if (TopFields.Contains(key)) continue;
            string? group = null, field = key;
            if (key.StartsWith(FlatLinclsPrefix, StringComparison.Ordinal) && LinclsFields.Contains(key[FlatLinclsPrefix.Length..]))
                (group, field) = ("lincls", key[FlatLinclsPrefix.Length..]);
            else group = Groups.FirstOrDefault(g => g != "lincls" && GroupFields(g, arch).Contains(key));
            if (group is null)
            {
                if (otherBackbone.Contains(key)) continue;
                throw new JsonException($"unknown field '{key}'");
            }
            groups[group]![field] = value?.DeepClone();
        }
        return groups;
    }

    public override void Write(Utf8JsonWriter writer, ModelPreset value, JsonSerializerOptions options) => ToJson(value).WriteTo(writer);

    /// <summary>The grouped JSON of <paramref name="preset"/>.</summary>
    private static JsonObject ToJson(ModelPreset preset)
    {
        var json = new JsonObject
        {
            ["name"] = preset.Name,
            ["description"] = preset.Description,
            ["arch"] = preset.Arch.Name(),
            ["backbone"] = JsonSerializer.SerializeToNode(preset.Backbone, preset.Backbone.GetType(), ModelPreset.Json),
            ["heads"] = JsonSerializer.SerializeToNode(preset.Heads, ModelPreset.Json),
            ["recipe"] = JsonSerializer.SerializeToNode(preset.Recipe, ModelPreset.Json),
            ["input"] = JsonSerializer.SerializeToNode(preset.Input, ModelPreset.Json),
        };
        if (!preset.Lincls.IsEmpty) json["lincls"] = JsonSerializer.SerializeToNode(preset.Lincls, ModelPreset.Json);
        return json;
    }

    /// <summary>Every field of <paramref name="preset"/> by its JSON path (<c>name</c>, <c>backbone.embed_dim</c>, …).</summary>
    internal static Dictionary<string, JsonNode?> Fields(ModelPreset preset)
    {
        var fields = new Dictionary<string, JsonNode?>();
        foreach (var (key, value) in ToJson(preset))
        {
            if (value is JsonObject group)
                foreach (var (field, v) in group) fields[$"{key}.{field}"] = v;
            else fields[key] = value;
        }
        return fields;
    }
}
