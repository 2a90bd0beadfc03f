using MoCoV3.Checkpoints;
using MoCoV3.Export;
using MoCoV3.Runtime;
using MoCoV3.Tests.Eval;

namespace MoCoV3.Tests.Export;

/// <summary>The export workflow as a library call (<see cref="CheckpointExport.Run"/>), which <c>mocov3 export</c> prints.</summary>
[TestClass]
public sealed class CheckpointExportTests
{
    [TestMethod]
    public void ExportsAToolkitCheckpointAndVerifiesIt()
    {
        TorchRuntime.Initialize("cpu");
        string dir = TestData.NewFolder("ckpt-export-");
        var preset = EvalTestModels.MicroVit28;
        string checkpoint = EvalTestModels.ToolkitCheckpoint(preset, dir, seed: 2);
        var notes = new List<string>();
        var result = CheckpointExport.Run(new CheckpointExportOptions
        {
            Weights = new WeightsOptions { Checkpoint = checkpoint },
            Output = Path.Combine(dir, "encoder.onnx"),
            Embedding = "cls+mean",
            Verify = true,
            VerifyBatch = 4,
        }, notes.Add);

        Assert.AreEqual(preset.Name, result.Preset.Name, "the checkpoint's own preset");
        Assert.AreEqual("cls+mean", result.Preset.Backbone.Embedding);
        Assert.AreEqual(2 * preset.Vit.EmbedDim, result.EmbeddingDim, "class token ++ mean patch token");
        Assert.AreEqual("fp32", result.Precision);
        Assert.AreEqual(new FileInfo(result.Output).Length, result.Bytes);
        Assert.IsNull(result.ExternalData);
        Assert.IsNotNull(result.Embedding);
        Assert.AreEqual(4, result.Embedding.Batch);
        Assert.IsTrue(result.Embedding.MaxAbsDiff < 1e-4, $"ONNX Runtime vs TorchSharp: {result.Embedding.MaxAbsDiff}");
        Assert.IsNull(result.Logits, "no head was asked for");
        Assert.IsTrue(result.Passed);
    }

    [TestMethod]
    public void RefusesWhatCannotBeExportedBeforeWritingAnything()
    {
        TorchRuntime.Initialize("cpu");
        string dir = TestData.NewFolder("ckpt-export-bad-");
        string checkpoint = EvalTestModels.ToolkitCheckpoint(EvalTestModels.MicroVit28, dir);
        string output = Path.Combine(dir, "never.onnx");
        var weights = new WeightsOptions { Checkpoint = checkpoint };

        var both = Assert.ThrowsExactly<ArgumentException>(() =>
            CheckpointExport.Run(new CheckpointExportOptions { Weights = weights, Output = output, Fp16 = true, Int8 = true }));
        StringAssert.Contains(both.Message, "exclude each other");
        var noHead = Assert.ThrowsExactly<ArgumentException>(() =>
            CheckpointExport.Run(new CheckpointExportOptions { Weights = weights, Output = output, WithHead = true }));
        StringAssert.Contains(noHead.Message, $"{checkpoint} holds no linear classifier");
        Assert.IsFalse(File.Exists(output));
    }
}
