using MoCoV3.Models;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MoCoV3.Tests.Models;

[TestClass]
public sealed class VisionTransformerTests
{
    private static long Count(nn.Module m) => m.parameters().Sum(p => p.numel());

    [TestMethod]
    [DataRow("vit-small", 21_665_664L)]
    [DataRow("vit-base", 85_798_656L)]
    [DataRow("vit-large", 303_301_632L)]
    public void BackboneParameterCountsMatchThePaperModels(string preset, long expected)
    {
        using var vit = new VisionTransformer(PresetCatalog.Get(preset));
        Assert.AreEqual(expected, Count(vit));
    }

    [TestMethod]
    public void VitSmallHasTwelveHeadsAndTimmNames()
    {
        var preset = PresetCatalog.Get("vit-small");
        Assert.AreEqual(12, preset.Vit.Heads);
        using var vit = new VisionTransformer(preset);
        var shapes = vit.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.shape);
        CollectionAssert.AreEqual(new long[] { 1152, 384 }, shapes["blocks.0.attn.qkv.weight"]);
        CollectionAssert.AreEqual(new long[] { 1536, 384 }, shapes["blocks.11.mlp.fc1.weight"]);
        CollectionAssert.AreEqual(new long[] { 1, 197, 384 }, shapes["pos_embed"]);
        CollectionAssert.AreEqual(new long[] { 384, 3, 16, 16 }, shapes["patch_embed.proj.weight"]);
        CollectionAssert.AreEqual(new long[] { 1, 1, 384 }, shapes["cls_token"]);
        Assert.IsTrue(shapes.ContainsKey("norm.weight"));
    }

    [TestMethod]
    public void InitialisationFollowsMoCoV3()
    {
        manual_seed(3);
        var preset = TestPresets.Get("vit-tiny-fmnist");
        using var vit = new VisionTransformer(preset);
        var p = vit.named_parameters().ToDictionary(kv => kv.name, kv => kv.parameter);
        int d = preset.Vit.EmbedDim;

        // Patch projection: uniform within sqrt(6 / (C·P·P + D)), zero bias, frozen.
        double patchBound = Math.Sqrt(6.0 / (1 * 4 * 4 + d));
        var patch = p["patch_embed.proj.weight"];
        Assert.IsFalse(patch.requires_grad);
        Assert.IsFalse(p["patch_embed.proj.bias"].requires_grad);
        Assert.IsTrue(patch.abs().max().item<float>() <= patchBound);
        Assert.IsTrue(patch.abs().max().item<float>() > 0.9 * patchBound);

        // qkv: Q, K, V each Xavier over (D + D): bound sqrt(3 / D); fc1: Xavier over (D + 4D).
        double qkvBound = Math.Sqrt(6.0 / (d + d));
        var qkv = p["blocks.0.attn.qkv.weight"];
        Assert.IsTrue(qkv.abs().max().item<float>() <= qkvBound);
        Assert.IsTrue(qkv.abs().max().item<float>() > 0.95 * qkvBound);
        double fc1Bound = Math.Sqrt(6.0 / (d + 4 * d));
        Assert.IsTrue(p["blocks.0.mlp.fc1.weight"].abs().max().item<float>() <= fc1Bound);
        Assert.AreEqual(0f, p["blocks.0.attn.qkv.bias"].abs().max().item<float>());

        // Class token N(0, 1e-6); position embedding fixed.
        float clsMax = p["cls_token"].abs().max().item<float>();
        Assert.IsTrue(clsMax > 0 && clsMax < 1e-5, $"cls token max {clsMax}");
        Assert.IsFalse(p["pos_embed"].requires_grad);
    }

    [TestMethod]
    public void OutputIsTheNormalisedClassToken()
    {
        manual_seed(4);
        using var vit = new VisionTransformer(TestPresets.MicroVit);
        vit.eval();
        using var x = randn(3, 1, 16, 16);
        using var features = vit.forward(x);
        CollectionAssert.AreEqual(new long[] { 3, 32 }, features.shape);
        using var tokens = vit.ForwardTokens(x);
        CollectionAssert.AreEqual(new long[] { 3, 17, 32 }, tokens.shape);
        Assert.AreEqual(0f, (tokens[.., 0] - features).abs().max().item<float>());
    }

    [TestMethod]
    public void AttentionEqualsTheWrittenOutFormula()
    {
        // SDPA must compute softmax(q kᵀ / sqrt(d_head)) v for each head.
        manual_seed(5);
        using var attn = new Attention(8, 2);
        using var x = randn(2, 5, 8);
        using var y = attn.forward(x);
        var p = attn.named_parameters().ToDictionary(kv => kv.name, kv => kv.parameter);
        var qkv = nn.functional.linear(x, p["qkv.weight"], p["qkv.bias"]).reshape(2, 5, 3, 2, 4).permute(2, 0, 3, 1, 4);
        var a = matmul(qkv[0], qkv[1].transpose(-2, -1)) / Math.Sqrt(4);
        var o = matmul(a.softmax(-1), qkv[2]).transpose(1, 2).reshape(2, 5, 8);
        var expected = nn.functional.linear(o, p["proj.weight"], p["proj.bias"]);
        Assert.IsTrue((y - expected).abs().max().item<float>() < 1e-5);
    }
}
