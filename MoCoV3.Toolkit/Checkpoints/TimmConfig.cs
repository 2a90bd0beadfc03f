using System.Text.Json;
using System.Text.Json.Nodes;
using MoCoV3.Models;

namespace MoCoV3.Checkpoints;

/// <summary>
/// The <c>config.json</c> that timm writes beside <c>model.safetensors</c> on the Hugging Face hub and reads back with
/// <c>timm.create_model("hf-hub:…")</c> or from a local folder: the timm <c>architecture</c> (a registered model name),
/// <c>num_classes</c>, <c>num_features</c>, <c>global_pool</c>, the <c>model_args</c> that rebuild this preset's shape
/// (they override the named model's defaults: moco-v3's ViT-S has 12 heads where timm's <c>vit_small</c> has 6), and the
/// <c>pretrained_cfg</c> data config (input size, mean, std, interpolation, crop).
/// timm has no 3x3 stride-1 ResNet stem and no ResNet with other block counts than its named depths; for such presets
/// the file names the nearest model and <see cref="Build"/> says so in its notes.
/// </summary>
public static class TimmConfig
{
    public const string FileName = "config.json";

    /// <summary>ImageNet evaluation's centre crop (Resize 256, CenterCrop 224).</summary>
    private const double CropPct = 0.875;

    /// <param name="preset">The backbone's preset.</param>
    /// <param name="numFeatures">The backbone's feature width.</param>
    /// <param name="numClasses">Classes of the classifier written with the weights, 0 without one.</param>
    /// <param name="notes">Receives what a timm user should know (a ResNet timm cannot build exactly).</param>
    public static JsonObject Build(ModelPreset preset, int numFeatures, int numClasses, List<string> notes)
    {
        int c = preset.Input.Channels, s = preset.Input.ImageSize;
        JsonObject modelArgs;
        string architecture;
        if (preset.Backbone is VitConfig vit)
        {
            architecture = VitName(vit.EmbedDim);
            modelArgs = new JsonObject
            {
                ["img_size"] = s,
                ["patch_size"] = vit.PatchSize,
                ["in_chans"] = c,
                ["embed_dim"] = vit.EmbedDim,
                ["depth"] = vit.Depth,
                ["num_heads"] = vit.Heads,
                ["mlp_ratio"] = vit.MlpRatio,
                ["qkv_bias"] = true,
                ["class_token"] = true,
                ["global_pool"] = "token",
            };
            if (preset.Backbone.Embedding != EmbeddingKinds.ClassToken)
                notes.Add($"config.json: timm's features are the class token; the preset's '{preset.Backbone.Embedding}' embedding is this toolkit's (export)");
        }
        else
        {
            architecture = ResNetName(preset, notes);
            modelArgs = new JsonObject { ["in_chans"] = c };
        }
        modelArgs["num_classes"] = numClasses;

        var pretrained = new JsonObject
        {
            ["input_size"] = new JsonArray(c, s, s),
            ["fixed_input_size"] = preset.IsVit,
            ["interpolation"] = preset.IsVit ? "bicubic" : "bilinear",
            ["crop_pct"] = CropPct,
            ["crop_mode"] = "center",
            ["mean"] = Numbers(preset.Input.Mean),
            ["std"] = Numbers(preset.Input.Std),
            ["num_classes"] = numClasses,
            ["first_conv"] = preset.IsVit ? "patch_embed.proj" : "conv1",
            ["classifier"] = preset.IsVit ? "head" : "fc",
        };
        return new JsonObject
        {
            ["architecture"] = architecture,
            ["num_classes"] = numClasses,
            ["num_features"] = numFeatures,
            ["global_pool"] = preset.IsVit ? "token" : "avg",
            ["model_args"] = modelArgs,
            ["pretrained_cfg"] = pretrained,
        };
    }

    /// <summary>
    /// Refuses, with an <see cref="ArgumentException"/> naming it, an existing file at <paramref name="path"/> that is not a
    /// timm config (a run's <c>config.json</c>, say), so that writing one does not replace it.
    /// </summary>
    public static void CheckReplaceable(string path)
    {
        if (File.Exists(path) && !IsTimmConfig(path))
            throw new ArgumentException($"{path}: exists and is not a timm config.json (no architecture and pretrained_cfg); write the safetensors file to another folder");
    }

    /// <summary>Writes <paramref name="config"/> to <paramref name="path"/> durably, after <see cref="CheckReplaceable"/>.</summary>
    public static void Write(string path, JsonObject config)
    {
        CheckReplaceable(path);
        MoCoV3.IO.DurableFile.WriteAllText(path, config.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
    }

    private static bool IsTimmConfig(string path)
    {
        try
        {
            using var stream = File.OpenRead(path);
            using var doc = JsonDocument.Parse(stream);
            return doc.RootElement.ValueKind == JsonValueKind.Object
                   && doc.RootElement.TryGetProperty("architecture", out _)
                   && doc.RootElement.TryGetProperty("pretrained_cfg", out _);
        }
        catch (JsonException)
        {
            return false;
        }
    }

    /// <summary>A registered timm ViT whose defaults <c>model_args</c> then override (by width, as timm names them).</summary>
    private static string VitName(int embedDim) => embedDim switch
    {
        192 => "vit_tiny_patch16_224",
        384 => "vit_small_patch16_224",
        1024 => "vit_large_patch16_224",
        _ => "vit_base_patch16_224",
    };

    private static string ResNetName(ModelPreset preset, List<string> notes)
    {
        bool bottleneck = preset.ResNet.Block == ResNetBlock.Bottleneck;
        string? exact = (bottleneck, string.Join(",", preset.ResNet.Layers)) switch
        {
            (false, "2,2,2,2") => "resnet18",
            (false, "3,4,6,3") => "resnet34",
            (true, "3,4,6,3") => "resnet50",
            (true, "3,4,23,3") => "resnet101",
            (true, "3,8,36,3") => "resnet152",
            _ => null,
        };
        string name = exact ?? (bottleneck ? "resnet50" : "resnet18");
        if (exact is null)
            notes.Add($"config.json: timm has no ResNet with {preset.ResNet.Block.Name()} blocks [{string.Join(",", preset.ResNet.Layers)}]; it names {name}, whose weights differ");
        if (preset.ResNet.SmallStem)
            notes.Add($"config.json: timm's {name} has a 7x7 stride-2 stem with max-pool, this preset a 3x3 stride-1 stem: timm.create_model cannot load these weights (torchvision-style code with the small stem can)");
        return name;
    }

    private static JsonArray Numbers(double[] values) => new(values.Select(v => (JsonNode?)JsonValue.Create(v)).ToArray());
}
