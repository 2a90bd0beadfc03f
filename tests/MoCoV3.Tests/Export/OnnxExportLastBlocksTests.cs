using MoCoV3.Inference;
using MoCoV3.Export;
using MoCoV3.Models;
using static TorchSharp.torch;

namespace MoCoV3.Tests.Export;

/// <summary>The <c>@lastN</c> embeddings: features of the last N blocks, last first, in TorchSharp and in the exported graph.</summary>
[TestClass]
public sealed class OnnxExportLastBlocksTests
{
    [TestMethod]
    [DataRow("cls@last2")]
    [DataRow("cls+mean@last2")]
    public void EachBlocksPartIsWhatAShallowerCopyOfTheModelEmbeds(string kind)
    {
        // Block 0's part of a depth-2 model must equal the embedding of a depth-1 model holding the same patch
        // projection, tokens, block 0 and final norm: an independent statement of "block 0's tokens through the final norm".
        var preset = TestPresets.MicroVit.WithEmbedding(kind);
        var single = EmbeddingSpec.Parse(kind) with { LastBlocks = 1 };
        using var deep = (VisionTransformer)ExportTestModels.Build(preset);
        using var shallow = (VisionTransformer)BackboneFactory.Create(preset.WithEmbedding(single.ToString()).WithVit(vit => vit with { Depth = 1 }));
        var weights = deep.state_dict().Where(kv => !kv.Key.StartsWith("blocks.1.", StringComparison.Ordinal)).ToDictionary();
        shallow.load_state_dict(weights, strict: true);
        using var deepSingle = (VisionTransformer)BackboneFactory.Create(preset.WithEmbedding(single.ToString()));
        deepSingle.load_state_dict(deep.state_dict(), strict: true);
        deep.eval(); shallow.eval(); deepSingle.eval();

        using var _ = no_grad();
        using var x = randn(3, 1, 16, 16);
        using var embedding = deep.Embed(x);
        int part = single.Width(preset.Vit.EmbedDim);
        Assert.AreEqual(2 * part, (int)embedding.shape[1]);
        Assert.AreEqual(2 * part, deep.EmbeddingDim);
        using var last = deepSingle.Embed(x);
        using var first = shallow.Embed(x);
        Assert.AreEqual(0f, (embedding[.., ..part] - last).abs().max().item<float>(), "the last block comes first");
        float earlier = (embedding[.., part..] - first).abs().max().item<float>();
        Assert.IsLessThan(1e-5f, earlier, $"block 0's part differs by {earlier}");
        Assert.IsGreaterThan(0.01f, (embedding[.., part..] - last).abs().max().item<float>(), "the two blocks' parts must differ");
    }

    [TestMethod]
    public void LastBlocksExportMatchesTorchSharpAtBothOpsetsAndTheHeadReadsTheLastClassToken()
    {
        foreach (int opset in new[] { ExportOptions.MinOpset, ExportOptions.MaxOpset })
        {
            var preset = TestPresets.MicroVit.WithEmbedding("cls+mean@last2");
            using var backbone = ExportTestModels.Build(preset);
            manual_seed(11);
            using var weight = randn(4, backbone.FeatureDim);
            using var bias = randn(4);
            var model = OnnxExporter.Export(backbone, preset, new ExportOptions { Opset = opset, Head = LinearHead.FromTensors(weight, bias) });
            int d = preset.Vit.EmbedDim;
            Assert.AreEqual(4 * d, model.Graph.Output[0].Type.TensorType.Shape.Dim[1].DimValue);
            Assert.AreEqual(1, model.Graph.Initializer.Count(t => t.Name == "norm.weight"), "the final norm's weights are stored once");

            using var runner = new OnnxModelRunner(Google.Protobuf.MessageExtensions.ToByteArray(model));
            var result = OnnxVerifier.Verify(runner, backbone, preset, batch: 3, seed: opset);
            Assert.IsTrue(result.Passed, $"opset {opset}: {result}");
            Assert.IsLessThanOrEqualTo(1e-4, result.MaxAbsDiff);

            using var pixels = TorchReference.RandomPixels(2, 1, 16, seed: 5);
            var outputs = runner.Run(pixels.data<float>().ToArray(), 2);
            float[] embedding = outputs[OnnxMetadata.EmbeddingName], logits = outputs[OnnxMetadata.LogitsName];
            var w = weight.data<float>().ToArray();
            var b = bias.data<float>().ToArray();
            for (int i = 0; i < 2; i++)
                for (int k = 0; k < 4; k++)
                {
                    double expected = b[k];
                    for (int j = 0; j < d; j++) expected += embedding[i * 4 * d + j] * w[k * d + j];
                    Assert.AreEqual(expected, logits[i * 4 + k], 1e-4, $"opset {opset}, image {i}, class {k}");
                }
        }
    }
}
