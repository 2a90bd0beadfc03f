using MoCoV3.Checkpoints;

namespace MoCoV3.Tests.Import;

/// <summary>The key layouts against the recipe's tables (§3.1, §3.2), in both directions.</summary>
[TestClass]
public sealed class ImportKeyLayoutTests
{
    [TestMethod]
    [DataRow("backbone.patch_embed.projection.weight", "patch_embed.proj.weight")]
    [DataRow("backbone.layers.3.ln1.bias", "blocks.3.norm1.bias")]
    [DataRow("backbone.layers.3.attn.qkv.weight", "blocks.3.attn.qkv.weight")]
    [DataRow("backbone.layers.3.attn.proj.bias", "blocks.3.attn.proj.bias")]
    [DataRow("backbone.layers.11.ln2.weight", "blocks.11.norm2.weight")]
    [DataRow("backbone.layers.0.ffn.layers.0.0.weight", "blocks.0.mlp.fc1.weight")]
    [DataRow("backbone.layers.0.ffn.layers.1.bias", "blocks.0.mlp.fc2.bias")]
    [DataRow("backbone.ln1.weight", "norm.weight")]
    [DataRow("backbone.cls_token", "cls_token")]
    [DataRow("backbone.pos_embed", "pos_embed")]
    [DataRow("backbone.layer1.0.downsample.0.weight", "layer1.0.downsample.0.weight")]
    [DataRow("backbone.bn1.running_var", "bn1.running_var")]
    public void MMSelfSupNamesMapBothWays(string mm, string ours)
    {
        var layout = KeyLayout.For(CheckpointFormat.MMSelfSup);
        Assert.AreEqual(new MappedKey(CheckpointPart.Backbone, ours), layout.Map(mm));
        Assert.AreEqual(mm, layout.FromBackbone(ours));
    }

    [TestMethod]
    public void MMSelfSupOtherPartsAreNamed()
    {
        var layout = KeyLayout.For(CheckpointFormat.MMSelfSup);
        Assert.AreEqual(CheckpointPart.Projector, layout.Map("neck.fc0.weight").Part);
        Assert.AreEqual(CheckpointPart.Predictor, layout.Map("head.predictor.bn0.weight").Part);
        Assert.AreEqual(CheckpointPart.MomentumEncoder, layout.Map("momentum_encoder.module.0.conv1.weight").Part);
        Assert.AreEqual(new MappedKey(CheckpointPart.ClassifierHead, "weight"), layout.Map("head.fc.weight"));
        // extract_backbone_weights.py output: no prefix.
        Assert.AreEqual(new MappedKey(CheckpointPart.Backbone, "blocks.2.mlp.fc1.bias"), layout.Map("layers.2.ffn.layers.0.0.bias"));
    }

    [TestMethod]
    public void OfficialKeepsOnlyTheBaseEncoder()
    {
        var layout = KeyLayout.For(CheckpointFormat.Official);
        Assert.AreEqual(new MappedKey(CheckpointPart.Backbone, "blocks.0.attn.qkv.weight"), layout.Map("module.base_encoder.blocks.0.attn.qkv.weight"));
        Assert.AreEqual(new MappedKey(CheckpointPart.Backbone, "layer4.2.bn3.weight"), layout.Map("module.base_encoder.layer4.2.bn3.weight"));
        Assert.AreEqual(CheckpointPart.Projector, layout.Map("module.base_encoder.head.7.running_mean").Part);
        Assert.AreEqual(CheckpointPart.Projector, layout.Map("module.base_encoder.fc.0.weight").Part);
        Assert.AreEqual(CheckpointPart.MomentumEncoder, layout.Map("module.momentum_encoder.cls_token").Part);
        Assert.AreEqual(CheckpointPart.Predictor, layout.Map("module.predictor.4.running_var").Part);
        Assert.AreEqual("module.base_encoder.norm.bias", layout.FromBackbone("norm.bias"));
        Assert.AreEqual("base_encoder.projector.6.weight", OfficialKeyLayout.ToMoCo("module.base_encoder.head.6.weight"));
    }

    [TestMethod]
    public void TimmAndTorchvisionClassifiersAreHeads()
    {
        var timm = KeyLayout.For(CheckpointFormat.Timm);
        Assert.AreEqual(new MappedKey(CheckpointPart.ClassifierHead, "bias"), timm.Map("head.bias"));
        Assert.AreEqual(new MappedKey(CheckpointPart.ClassifierHead, "weight"), timm.Map("module.head.weight"));
        Assert.AreEqual(new MappedKey(CheckpointPart.Backbone, "norm.weight"), timm.Map("module.norm.weight"));
        var tv = KeyLayout.For(CheckpointFormat.Torchvision);
        Assert.AreEqual(new MappedKey(CheckpointPart.ClassifierHead, "weight"), tv.Map("fc.weight"));
        Assert.AreEqual(new MappedKey(CheckpointPart.Backbone, "layer1.0.conv1.weight"), tv.Map("layer1.0.conv1.weight"));
        Assert.AreEqual("fc.bias", tv.FromClassifier("bias", vit: false));
    }

    [TestMethod]
    public void FormatsAreDetectedFromKeys()
    {
        Assert.AreEqual(CheckpointFormat.Official, KeyLayout.Detect(["module.base_encoder.cls_token", "module.predictor.0.weight"]));
        Assert.AreEqual(CheckpointFormat.MMSelfSup, KeyLayout.Detect(["backbone.layers.0.ln1.weight", "neck.fc0.weight"]));
        Assert.AreEqual(CheckpointFormat.MMSelfSup, KeyLayout.Detect(["cls_token", "patch_embed.projection.weight", "layers.0.ln1.weight"]));
        Assert.AreEqual(CheckpointFormat.Timm, KeyLayout.Detect(["cls_token", "blocks.0.norm1.weight", "head.weight"]));
        Assert.AreEqual(CheckpointFormat.Timm, KeyLayout.Detect(["module.blocks.0.norm1.weight", "module.head.weight"]));
        Assert.AreEqual(CheckpointFormat.Torchvision, KeyLayout.Detect(["conv1.weight", "layer1.0.bn1.weight", "fc.weight"]));
        Assert.AreEqual(CheckpointFormat.Toolkit, KeyLayout.Detect(["base_encoder.backbone.norm.weight"]));
        Assert.IsNull(KeyLayout.Detect(["encoder.weight"]));
    }
}
