using MoCoV3.Inference;
using MoCoV3.Export;
using TorchSharp.Modules;

namespace MoCoV3.Tests.Export;

/// <summary>ResNet export (BatchNorm folded into the convolutions): ONNX Runtime against TorchSharp in eval mode.</summary>
[TestClass]
public sealed class OnnxExportResNetTests
{
    [TestMethod]
    public void MicroBasicResNet_SmallStem_OnnxRuntimeMatchesTorchSharp()
    {
        var preset = ExportTestModels.MicroResNet;
        using var backbone = ExportTestModels.Build(preset);
        var result = ExportTestModels.ExportAndVerify(backbone, preset);
        Assert.IsTrue(result.Passed, result.ToString());
        var model = OnnxExporter.Export(backbone, preset, new ExportOptions());
        Assert.IsFalse(model.Graph.Node.Any(n => n.OpType is "MaxPool" or "BatchNormalization"), "small stem: no max-pool; BN is folded");
    }

    [TestMethod]
    public void BottleneckResNet_StandardStem_OnnxRuntimeMatchesTorchSharp()
    {
        var preset = ExportTestModels.SmallBottleneckResNet;
        using var backbone = ExportTestModels.Build(preset);
        Assert.AreEqual(2048, backbone.FeatureDim);
        var result = ExportTestModels.ExportAndVerify(backbone, preset, batch: 3);
        Assert.IsTrue(result.Passed, result.ToString());
        var model = OnnxExporter.Export(backbone, preset, new ExportOptions());
        Assert.AreEqual(1, model.Graph.Node.Count(n => n.OpType == "MaxPool"));
        Assert.AreEqual(4, model.Graph.Node.Count(n => n.Name.Contains("downsample", StringComparison.Ordinal) && n.OpType == "Conv"));
    }

    [TestMethod]
    public void BatchNormRunningStatistics_AreUsed_NotBatchStatistics()
    {
        // A single image: batch statistics would differ wildly from the running ones.
        var preset = ExportTestModels.MicroResNet;
        using var backbone = ExportTestModels.Build(preset);
        var bn = backbone.named_modules().Select(m => m.module).OfType<BatchNorm2d>().First();
        Assert.AreNotEqual(0.0, bn.running_mean!.abs().sum().item<float>(), "running statistics were updated");
        var result = ExportTestModels.ExportAndVerify(backbone, preset, batch: 1);
        Assert.IsTrue(result.Passed, result.ToString());
        Assert.IsFalse(backbone.training, "the backbone stays in eval mode");
    }

    [TestMethod]
    public void FoldedWeights_AreConvWeightsPlusOneBiasPerChannel()
    {
        var preset = ExportTestModels.MicroResNet;
        using var backbone = ExportTestModels.Build(preset);
        var model = OnnxExporter.Export(backbone, preset, new ExportOptions());
        Assert.IsEmpty(OnnxModelCheck.Problems(model));
        long bnWeights = backbone.named_parameters().Where(p => p.name.Contains("bn", StringComparison.Ordinal) || p.name.Contains("downsample.1", StringComparison.Ordinal))
            .Where(p => p.name.EndsWith(".weight", StringComparison.Ordinal)).Sum(p => p.parameter.numel());
        long parameters = backbone.parameters().Sum(p => p.numel());
        Assert.AreEqual(parameters - bnWeights, ExportTestModels.WeightElements(model));
    }

    [TestMethod]
    public void Fp16_ResNet_StaysClose()
    {
        var preset = ExportTestModels.MicroResNet;
        using var backbone = ExportTestModels.Build(preset);
        var model = OnnxExporter.Export(backbone, preset, new ExportOptions { Fp16 = true });
        var result = OnnxVerifier.Verify(model, backbone, preset, batch: 4);
        Assert.IsTrue(result.Passed, result.ToString());
    }
}
