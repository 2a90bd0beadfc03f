using MoCoV3.Inference;
using MoCoV3.Export;
using MoCoV3.Models;
using static TorchSharp.torch;

namespace MoCoV3.Tests.Export;

/// <summary>ViT export: ONNX Runtime against TorchSharp, batch, head, fp16, opsets, graph structure.</summary>
[TestClass]
public sealed class OnnxExportVitTests
{
    private static ModelPreset MicroVit => TestPresets.MicroVit;

    [TestMethod]
    public void MicroVit_OnnxRuntimeMatchesTorchSharp()
    {
        using var backbone = ExportTestModels.Build(MicroVit);
        var result = ExportTestModels.ExportAndVerify(backbone, MicroVit);
        Assert.IsTrue(result.Passed, result.ToString());
        Assert.IsLessThanOrEqualTo(1e-4, result.MaxAbsDiff);
        Assert.AreEqual(4, result.Batch);
    }

    [TestMethod]
    public void VitTinyFmnist_OnnxRuntimeMatchesTorchSharp()
    {
        var preset = TestPresets.Get("vit-tiny-fmnist");
        using var backbone = ExportTestModels.Build(preset);
        var result = ExportTestModels.ExportAndVerify(backbone, preset);
        Assert.IsTrue(result.Passed, result.ToString());
        Assert.IsLessThanOrEqualTo(1e-4, result.MaxAbsDiff);
    }

    [TestMethod]
    public void VitSmall224_OnnxRuntimeMatchesTorchSharp_Batch2()
    {
        var preset = TestPresets.Get("vit-small");
        using var backbone = ExportTestModels.Build(preset);
        var result = ExportTestModels.ExportAndVerify(backbone, preset, batch: 2);
        Assert.IsTrue(result.Passed, result.ToString());
        Assert.IsLessThanOrEqualTo(1e-4, result.MaxAbsDiff);
        Assert.AreEqual(2, result.Batch);
    }

    [TestMethod]
    public void BatchDimensionIsSymbolic_OneAndThreeImagesRunOnTheSameModel()
    {
        using var backbone = ExportTestModels.Build(MicroVit);
        var model = OnnxExporter.Export(backbone, MicroVit, new ExportOptions());
        Assert.AreEqual(OnnxMetadata.BatchDim, model.Graph.Input[0].Type.TensorType.Shape.Dim[0].DimParam);
        Assert.AreEqual(OnnxMetadata.BatchDim, model.Graph.Output[0].Type.TensorType.Shape.Dim[0].DimParam);
        using var runner = new OnnxModelRunner(Google.Protobuf.MessageExtensions.ToByteArray(model));
        foreach (int n in new[] { 1, 3 })
        {
            var result = OnnxVerifier.Verify(runner, backbone, MicroVit, batch: n, seed: n);
            Assert.AreEqual(n, result.Batch);
            Assert.IsTrue(result.Passed, $"batch {n}: {result}");
        }
    }

    [TestMethod]
    public void Head_LogitsAreEmbeddingTimesWeightTransposedPlusBias()
    {
        using var backbone = ExportTestModels.Build(MicroVit);
        manual_seed(5);
        using var weight = randn(5, backbone.FeatureDim);
        using var bias = randn(5);
        var head = LinearHead.FromTensors(weight, bias);
        var model = OnnxExporter.Export(backbone, MicroVit, new ExportOptions { Head = head });
        Assert.AreEqual("5", model.MetadataProps.Single(p => p.Key == OnnxMetadata.HeadClasses).Value);
        CollectionAssert.AreEqual(new[] { OnnxMetadata.EmbeddingName, OnnxMetadata.LogitsName }, model.Graph.Output.Select(o => o.Name).ToArray());

        using var runner = new OnnxModelRunner(Google.Protobuf.MessageExtensions.ToByteArray(model));
        using var pixels = TorchReference.RandomPixels(3, 1, 16, seed: 2);
        var outputs = runner.Run(pixels.data<float>().ToArray(), 3);
        float[] features = outputs[OnnxMetadata.EmbeddingName], logits = outputs[OnnxMetadata.LogitsName];
        Assert.HasCount(3 * 5, logits);
        int d = backbone.FeatureDim;
        for (int i = 0; i < 3; i++)
            for (int k = 0; k < 5; k++)
            {
                double expected = head.Bias[k];
                for (int j = 0; j < d; j++) expected += features[i * d + j] * head.Weight[k * d + j];
                Assert.AreEqual(expected, logits[i * 5 + k], 1e-4, $"logit [{i},{k}]");
            }
        Assert.IsTrue(OnnxVerifier.Verify(runner, backbone, MicroVit, pixels).Passed);
    }

    [TestMethod]
    public void Fp16_RunsWithFloat32InputAndOutputAndStaysClose()
    {
        using var backbone = ExportTestModels.Build(MicroVit);
        var model = OnnxExporter.Export(backbone, MicroVit, new ExportOptions { Fp16 = true });
        Assert.AreEqual(OnnxGraphBuilder.Float, model.Graph.Input[0].Type.TensorType.ElemType);
        Assert.AreEqual(OnnxGraphBuilder.Float, model.Graph.Output[0].Type.TensorType.ElemType);
        Assert.IsTrue(model.Graph.Initializer.Where(t => t.Name.StartsWith("blocks.", StringComparison.Ordinal))
            .All(t => t.DataType == OnnxGraphBuilder.Float16), "block weights are float16");
        Assert.AreEqual("fp16", model.MetadataProps.Single(p => p.Key == OnnxMetadata.Precision).Value);
        Assert.IsEmpty(OnnxModelCheck.Problems(model));

        var result = OnnxVerifier.Verify(model, backbone, MicroVit, batch: 8);
        Assert.IsTrue(result.Fp16);
        Assert.IsGreaterThanOrEqualTo(VerifyResult.Fp16CosineMin, result.CosineMin, result.ToString());
        Assert.IsTrue(result.Passed, result.ToString());
    }

    [TestMethod]
    public void Opset21_AlsoMatches_Opset16_IsRejected()
    {
        using var backbone = ExportTestModels.Build(MicroVit);
        var result = ExportTestModels.ExportAndVerify(backbone, MicroVit, new ExportOptions { Opset = 21 });
        Assert.IsTrue(result.Passed, result.ToString());
        Assert.ThrowsExactly<ArgumentException>(() => OnnxExporter.Export(backbone, MicroVit, new ExportOptions { Opset = 16 }));
    }

    [TestMethod]
    public void Graph_PassesStructuralCheck_AndABrokenGraphIsCaught()
    {
        using var backbone = ExportTestModels.Build(MicroVit);
        var model = OnnxExporter.Export(backbone, MicroVit, new ExportOptions());
        Assert.IsEmpty(OnnxModelCheck.Problems(model));
        Assert.AreEqual(OnnxExporter.IrVersion, model.IrVersion);
        Assert.AreEqual(17L, model.OpsetImport.Single(o => o.Domain == "").Version);
        // The first nodes normalise the input; LayerNormalization is the opset-17 operator with eps 1e-6.
        Assert.AreEqual("Sub", model.Graph.Node[0].OpType);
        Assert.AreEqual(OnnxMetadata.InputName, model.Graph.Node[0].Input[0]);
        Assert.AreEqual("Div", model.Graph.Node[1].OpType);
        var norms = model.Graph.Node.Where(n => n.OpType == "LayerNormalization").ToList();
        Assert.HasCount(2 * MicroVit.Vit.Depth + 1, norms);
        Assert.IsTrue(norms.All(n => Math.Abs(n.Attribute.Single(a => a.Name == "epsilon").F - 1e-6f) < 1e-12));
        Assert.HasCount(MicroVit.Vit.Depth, model.Graph.Node.Where(n => n.OpType == "Erf").ToList());

        var broken = model.Clone();
        broken.Graph.Node.RemoveAt(5);
        Assert.IsNotEmpty(OnnxModelCheck.Problems(broken));
        var noOpset = model.Clone();
        noOpset.OpsetImport.Clear();
        Assert.IsTrue(OnnxModelCheck.Problems(noOpset).Any(p => p.Contains("opset", StringComparison.Ordinal)));
    }

    [TestMethod]
    public void WeightInitializers_AreExactlyTheBackboneParameters()
    {
        using var backbone = ExportTestModels.Build(MicroVit);
        var model = OnnxExporter.Export(backbone, MicroVit, new ExportOptions());
        long parameters = backbone.parameters().Sum(p => p.numel());
        Assert.AreEqual(parameters, ExportTestModels.WeightElements(model));
    }
}
