using System.Text.Json;
using MoCoV3.Models;

namespace MoCoV3.Tests.Models;

[TestClass]
public sealed class PresetCatalogTests
{
    [TestMethod]
    public void ShipsTheSevenPresets()
    {
        var names = PresetCatalog.All().Select(p => p.Name).ToList();
        CollectionAssert.AreEquivalent(
            new[] { "vit-tiny-fmnist", "vit-tiny-fmnist-quick", "vit-small", "vit-base", "vit-large", "resnet50", "resnet18-fmnist" }, names);
        // The quickstart preset (model card: models/vit-tiny-fmnist-quick.md).
        var quick = PresetCatalog.Get("vit-tiny-fmnist-quick");
        Assert.AreEqual((28, 1, 7, 128, 6, 4, 1024, 0.9), (quick.Input.ImageSize, quick.Input.Channels, quick.Vit.PatchSize, quick.Vit.EmbedDim, quick.Vit.Depth, quick.Vit.Heads, quick.Heads.HiddenDim, quick.Recipe.Momentum0));
        Assert.AreEqual("cls+mean@last4", quick.Backbone.Embedding);
        using var backbone = BackboneFactory.Create(quick);
        Assert.AreEqual(1024, backbone.EmbeddingDim, "class token ++ mean patch token of 4 blocks at width 128");
    }

    [TestMethod]
    public void RecipesMatchThePaper()
    {
        var vitS = PresetCatalog.Get("vit-small");
        Assert.AreEqual((OptimizerKind.AdamW, 1.5e-4, 0.1, 0.2, 0.99, 40.0), (vitS.Recipe.Optimizer, vitS.Recipe.BaseLr, vitS.Recipe.WeightDecay, vitS.Recipe.Temperature, vitS.Recipe.Momentum0, vitS.Recipe.WarmupEpochs));
        Assert.AreEqual((3, 4096, 256, true), (vitS.Heads.ProjectorLayers, vitS.Heads.HiddenDim, vitS.Heads.OutDim, vitS.Heads.PredictorLastBn));
        var r50 = PresetCatalog.Get("resnet50");
        Assert.AreEqual((OptimizerKind.Lars, 0.6, 1e-6, 1.0, 2, false), (r50.Recipe.Optimizer, r50.Recipe.BaseLr, r50.Recipe.WeightDecay, r50.Recipe.Temperature, r50.Heads.ProjectorLayers, r50.Heads.PredictorLastBn));
        var tiny = PresetCatalog.Get("vit-tiny-fmnist");
        Assert.AreEqual((28, 1, 4, 192, 6, 3), (tiny.Input.ImageSize, tiny.Input.Channels, tiny.Vit.PatchSize, tiny.Vit.EmbedDim, tiny.Vit.Depth, tiny.Vit.Heads));
        var r18 = PresetCatalog.Get("resnet18-fmnist");
        Assert.IsTrue(r18.ResNet.SmallStem);
        Assert.AreEqual(ResNetBlock.Basic, r18.ResNet.Block);
    }

    [TestMethod]
    public void LinclsBaseLrIsOptionalValidatedAndWrittenOnlyWhenSet()
    {
        // The official presets keep moco-v3's linear-eval recipe (3 for ViTs, 0.1 for ResNets): none sets the field.
        foreach (var name in new[] { "vit-small", "vit-base", "vit-large", "resnet50" })
        {
            var official = PresetCatalog.Get(name);
            Assert.IsNull(official.Lincls.BaseLr, name);
            Assert.IsFalse(JsonSerializer.Serialize(official, ModelPreset.Json).Contains("\"lincls\""), $"{name}: no lincls group without its fields");
        }

        string dir = TestData.NewFolder();
        string path = Path.Combine(dir, "lr.json");
        var preset = PresetCatalog.Get("vit-tiny-fmnist").WithLincls(lincls => lincls with { BaseLr = 0.25 }) with { Name = "with-lincls-lr" };
        string json = JsonSerializer.Serialize(preset, ModelPreset.Json);
        StringAssert.Contains(json, "\"lincls\": {\n    \"base_lr\": 0.25\n  }");
        File.WriteAllText(path, json);
        Assert.AreEqual(0.25, PresetCatalog.Load(path).Lincls.BaseLr);

        foreach (var bad in new[] { "0", "-1", "1e9" })
        {
            File.WriteAllText(path, json.Replace("\"base_lr\": 0.25", $"\"base_lr\": {bad}"));
            var e = Assert.ThrowsExactly<InvalidDataException>(() => PresetCatalog.Load(path), bad);
            StringAssert.Contains(e.Message, path);
            StringAssert.Contains(e.Message, "lincls.base_lr must be in (0, 1000]");
        }
        File.WriteAllText(path, json.Replace("\"base_lr\": 0.25", "\"base_lr\": \"fast\""));
        StringAssert.Contains(Assert.ThrowsExactly<InvalidDataException>(() => PresetCatalog.Load(path)).Message, "lincls.base_lr");
    }

    [TestMethod]
    public void UnknownPresetListsTheKnownOnes()
    {
        var e = Assert.ThrowsExactly<ArgumentException>(() => PresetCatalog.Get("vit-huge"));
        StringAssert.Contains(e.Message, "vit-huge");
        StringAssert.Contains(e.Message, "vit-small");
    }

    [TestMethod]
    public void BadPresetFilesNameTheFileAndField()
    {
        string dir = TestData.NewFolder();
        string path = Path.Combine(dir, "bad.json");

        File.WriteAllText(path, """{ "name": "bad", "arch": "vit", "image_size": 30, "patch_size": 16 }""");
        var e = Assert.ThrowsExactly<InvalidDataException>(() => PresetCatalog.Load(path));
        StringAssert.Contains(e.Message, path);
        StringAssert.Contains(e.Message, "not a multiple of patch_size");

        File.WriteAllText(path, """{ "name": "bad", "arch": "vit", "image_size": 32, "embed_dimm": 64 }""");
        e = Assert.ThrowsExactly<InvalidDataException>(() => PresetCatalog.Load(path));
        StringAssert.Contains(e.Message, "embed_dimm");

        File.WriteAllText(path, """{ "name": "bad", "arch": """);
        e = Assert.ThrowsExactly<InvalidDataException>(() => PresetCatalog.Load(path));
        StringAssert.Contains(e.Message, path);
    }
}
