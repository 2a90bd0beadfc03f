using MoCoV3.Inference;
using MoCoV3.Export;
using MoCoV3.Models;
using static TorchSharp.torch;

namespace MoCoV3.Tests.Export;

/// <summary>The <c>cls+mean</c> embedding: class token ++ mean patch token, in TorchSharp and in the exported graph.</summary>
[TestClass]
public sealed class OnnxExportEmbeddingTests
{
    private static ModelPreset ClsMean(ModelPreset preset) => preset.WithEmbedding(EmbeddingKinds.ClassTokenAndMeanPatch);

    [TestMethod]
    public void TorchSharpEmbedIsTheClassTokenThenTheMeanOfThePatchTokens()
    {
        var preset = ClsMean(TestPresets.MicroVit);
        using var backbone = (VisionTransformer)ExportTestModels.Build(preset);
        Assert.AreEqual(2 * preset.Vit.EmbedDim, backbone.EmbeddingDim);
        Assert.AreEqual(preset.Vit.EmbedDim, backbone.FeatureDim, "training and heads keep the class token");
        using var _ = no_grad();
        using var x = randn(3, 1, 16, 16);
        using var tokens = backbone.ForwardTokens(x);
        using var embedding = backbone.Embed(x);
        using var cls = backbone.forward(x);
        Assert.AreEqual(0f, (embedding[.., ..preset.Vit.EmbedDim] - cls).abs().max().item<float>());
        using var mean = tokens[.., 1..].mean([1]);
        Assert.IsLessThan(1e-6f, (embedding[.., preset.Vit.EmbedDim..] - mean).abs().max().item<float>());
    }

    [TestMethod]
    public void ClsMeanExportMatchesTorchSharpAndTheHeadStillReadsTheClassToken()
    {
        foreach (int opset in new[] { ExportOptions.MinOpset, ExportOptions.MaxOpset })
        {
            var preset = ClsMean(TestPresets.MicroVit);
            using var backbone = ExportTestModels.Build(preset);
            manual_seed(9);
            using var weight = randn(4, backbone.FeatureDim);
            using var bias = randn(4);
            var model = OnnxExporter.Export(backbone, preset, new ExportOptions { Opset = opset, Head = LinearHead.FromTensors(weight, bias) });
            Assert.AreEqual(2 * preset.Vit.EmbedDim, model.Graph.Output[0].Type.TensorType.Shape.Dim[1].DimValue);

            using var runner = new OnnxModelRunner(Google.Protobuf.MessageExtensions.ToByteArray(model));
            var result = OnnxVerifier.Verify(runner, backbone, preset, batch: 3, seed: opset);
            Assert.IsTrue(result.Passed, $"opset {opset}: {result}");
            Assert.IsLessThanOrEqualTo(1e-4, result.MaxAbsDiff);

            using var pixels = TorchReference.RandomPixels(2, 1, 16, seed: 4);
            var outputs = runner.Run(pixels.data<float>().ToArray(), 2);
            float[] embedding = outputs[OnnxMetadata.EmbeddingName], logits = outputs[OnnxMetadata.LogitsName];
            int d = preset.Vit.EmbedDim;
            var w = weight.data<float>().ToArray();
            var b = bias.data<float>().ToArray();
            for (int i = 0; i < 2; i++)
                for (int k = 0; k < 4; k++)
                {
                    double expected = b[k];
                    for (int j = 0; j < d; j++) expected += embedding[i * 2 * d + j] * w[k * d + j]; // the class-token half only
                    Assert.AreEqual(expected, logits[i * 4 + k], 1e-4, $"opset {opset}, image {i}, class {k}");
                }
        }
    }

    [TestMethod]
    public void AnUnknownOrResNetClsMeanEmbeddingIsRefusedByName()
    {
        var bad = TestPresets.MicroVit.WithEmbedding("avg");
        var e = Assert.ThrowsExactly<InvalidDataException>(() => bad.Validate("test.json"));
        StringAssert.Contains(e.Message, "embedding must be 'cls' or 'cls+mean', either with '@lastN' for the last N blocks, found 'avg'");
        var resnet = TestPresets.Get("resnet18-fmnist").WithEmbedding(EmbeddingKinds.ClassTokenAndMeanPatch);
        e = Assert.ThrowsExactly<InvalidDataException>(() => resnet.Validate("r.json"));
        StringAssert.Contains(e.Message, "embedding must be 'cls' for a ResNet");
    }
}
