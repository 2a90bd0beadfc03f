using System.Text.Json;
using System.Text.Json.Nodes;
using MoCoV3.Models;

namespace MoCoV3.Tests.Models;

/// <summary>The grouped JSON form of presets, the flat form earlier versions wrote (checkpoints, ONNX metadata), and the enums.</summary>
[TestClass]
public sealed class PresetJsonTests
{
    [TestMethod]
    public void EveryShippedPresetReadsTheSameFromTheFlatForm()
    {
        foreach (var preset in PresetCatalog.All())
        {
            string grouped = JsonSerializer.Serialize(preset, ModelPreset.Json);
            string flat = Flat(preset);
            StringAssert.Contains(flat, "\"embed_dim\"", "the flat form has every field at the top");
            StringAssert.Contains(flat, "\"small_stem\"", "the flat form carries both architectures' fields");
            var fromFlat = ModelPreset.Parse(flat, "flat");
            Assert.AreEqual(grouped, JsonSerializer.Serialize(fromFlat, ModelPreset.Json), preset.Name);
            Assert.AreEqual(preset.Arch, fromFlat.Arch);
            Assert.AreEqual(preset.Heads, fromFlat.Heads, preset.Name);
            Assert.AreEqual(preset.Lincls, fromFlat.Lincls, preset.Name);
            CollectionAssert.AreEqual(preset.Input.Mean, fromFlat.Input.Mean);
        }
    }

    /// <summary>
    /// <paramref name="preset"/> in the flat form that earlier versions wrote into checkpoints and ONNX metadata: every field
    /// of both architectures at the top (the other family's at their defaults), linear-evaluation fields as <c>lincls_NAME</c>.
    /// </summary>
    private static string Flat(ModelPreset preset)
    {
        var grouped = JsonNode.Parse(JsonSerializer.Serialize(preset, ModelPreset.Json))!.AsObject();
        var flat = new JsonObject();
        foreach (var (key, value) in grouped)
        {
            if (value is not JsonObject group) { flat[key] = value?.DeepClone(); continue; }
            foreach (var (field, v) in group) flat[key == "lincls" ? "lincls_" + field : field] = v?.DeepClone();
        }
        BackboneConfig other = preset.IsVit ? new ResNetConfig() : new VitConfig();
        foreach (var (field, v) in JsonSerializer.SerializeToNode(other, other.GetType(), ModelPreset.Json)!.AsObject())
            if (!flat.ContainsKey(field)) flat[field] = v?.DeepClone();
        return flat.ToJsonString();
    }

    [TestMethod]
    public void TheGroupedFormCarriesOnlyTheArchitecturesOwnFields()
    {
        var vit = JsonNode.Parse(JsonSerializer.Serialize(PresetCatalog.Get("vit-small"), ModelPreset.Json))!.AsObject();
        CollectionAssert.AreEqual(new[] { "name", "description", "arch", "backbone", "heads", "recipe", "input" }, vit.Select(kv => kv.Key).ToArray());
        CollectionAssert.AreEquivalent(new[] { "patch_size", "embed_dim", "depth", "heads", "mlp_ratio", "embedding" },
            vit["backbone"]!.AsObject().Select(kv => kv.Key).ToArray());
        Assert.AreEqual("adamw", (string?)vit["recipe"]!["optimizer"]);

        var resnet = JsonNode.Parse(JsonSerializer.Serialize(PresetCatalog.Get("resnet50"), ModelPreset.Json))!.AsObject();
        CollectionAssert.AreEquivalent(new[] { "block", "layers", "small_stem", "zero_init_residual", "embedding" },
            resnet["backbone"]!.AsObject().Select(kv => kv.Key).ToArray());
        Assert.AreEqual("resnet", (string?)resnet["arch"]);
        Assert.AreEqual("bottleneck", (string?)resnet["backbone"]!["block"]);
        Assert.AreEqual("lars", (string?)resnet["recipe"]!["optimizer"]);

        var quick = JsonNode.Parse(JsonSerializer.Serialize(PresetCatalog.Get("vit-tiny-fmnist-quick"), ModelPreset.Json))!.AsObject();
        Assert.AreEqual(0.03, (double)quick["lincls"]!["base_lr"]!);
    }

    [TestMethod]
    public void AFieldInTheWrongGroupOrAnUnknownValueIsNamed()
    {
        var json = JsonNode.Parse(JsonSerializer.Serialize(PresetCatalog.Get("resnet50"), ModelPreset.Json))!.AsObject();
        json["backbone"]!["embed_dim"] = 384;
        var e = Assert.ThrowsExactly<InvalidDataException>(() => ModelPreset.Parse(json.ToJsonString(), "r50.json"));
        StringAssert.StartsWith(e.Message, "r50.json: invalid preset JSON");
        StringAssert.Contains(e.Message, "unknown field 'backbone.embed_dim': a resnet backbone has block, layers, small_stem, zero_init_residual, embedding");

        json = JsonNode.Parse(JsonSerializer.Serialize(PresetCatalog.Get("resnet50"), ModelPreset.Json))!.AsObject();
        json["recipe"]!["optimizer"] = "sgd";
        e = Assert.ThrowsExactly<InvalidDataException>(() => ModelPreset.Parse(json.ToJsonString(), "r50.json"));
        StringAssert.Contains(e.Message, "must be 'adamw' or 'lars', found 'sgd'");

        json = JsonNode.Parse(JsonSerializer.Serialize(PresetCatalog.Get("vit-small"), ModelPreset.Json))!.AsObject();
        json["arch"] = "convnext";
        e = Assert.ThrowsExactly<InvalidDataException>(() => ModelPreset.Parse(json.ToJsonString(), "v.json"));
        StringAssert.Contains(e.Message, "'arch' must be 'vit' or 'resnet' before a backbone can be read, found 'convnext'");

        json = JsonNode.Parse(JsonSerializer.Serialize(PresetCatalog.Get("vit-small"), ModelPreset.Json))!.AsObject();
        json["optimiser"] = "adamw";
        e = Assert.ThrowsExactly<InvalidDataException>(() => ModelPreset.Parse(json.ToJsonString(), "v.json"));
        StringAssert.Contains(e.Message, "unknown field 'optimiser'");
    }

    [TestMethod]
    public void EnumsHaveTheirJsonNames()
    {
        Assert.AreEqual("resnet", Architecture.ResNet.Name());
        Assert.AreEqual("bottleneck", ResNetBlock.Bottleneck.Name());
        Assert.AreEqual("adamw", OptimizerKind.AdamW.Name());
        CollectionAssert.AreEqual(new[] { "vit", "resnet" }, JsonEnum.Names<Architecture>().ToArray());
        Assert.AreEqual(OptimizerKind.Lars, JsonEnum.Parse<OptimizerKind>("lars", "optimizer"));
        var e = Assert.ThrowsExactly<ArgumentException>(() => JsonEnum.Parse<OptimizerKind>("Lars", "optimizer"));
        Assert.AreEqual("optimizer must be 'adamw' or 'lars', found 'Lars'", e.Message);
    }
}
