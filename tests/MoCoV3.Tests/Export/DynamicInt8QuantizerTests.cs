using MoCoV3.Inference;
using Google.Protobuf;
using MoCoV3.Export;
using MoCoV3.Export.Quantization;
using MoCoV3.Models;
using Onnx;
using static TorchSharp.torch;

namespace MoCoV3.Tests.Export;

/// <summary>Dynamic int8 quantisation: structure, accuracy against float32 in ONNX Runtime, metadata, files, and what ORT fuses.</summary>
[TestClass]
public sealed class DynamicInt8QuantizerTests
{
    public TestContext TestContext { get; set; } = null!;

    private static Dictionary<string, int> OpCounts(ModelProto model) =>
        model.Graph.Node.GroupBy(n => n.OpType).ToDictionary(g => g.Key, g => g.Count());

    private static (float[] Fp32, float[] Int8) Embeddings(ModelProto fp32, ModelProto int8, ModelPreset preset, int batch, string output = "embedding")
    {
        using var pixels = TorchReference.RandomPixels(batch, preset.Input.Channels, preset.Input.ImageSize, seed: 7);
        float[] input = TensorData.ToFloatArray(pixels);
        using var a = new OnnxModelRunner(fp32.ToByteArray());
        using var b = new OnnxModelRunner(int8.ToByteArray());
        return (a.Run(input, batch)[output], b.Run(input, batch)[output]);
    }

    [TestMethod]
    public void MicroVit_EveryWeightMatMulIsInt8_AndEmbeddingsStayWithinCosine099()
    {
        var preset = TestPresets.MicroVit;
        using var backbone = ExportTestModels.Build(preset);
        var fp32 = OnnxExporter.Export(backbone, preset, new ExportOptions());
        var result = DynamicInt8Quantizer.Quantize(fp32);
        var int8 = result.Model;

        // 4 weight MatMuls per block (qkv, proj, fc1, fc2); the 2 attention MatMuls per block multiply activations.
        var before = OpCounts(fp32);
        var after = OpCounts(int8);
        Assert.AreEqual(4 * preset.Vit.Depth, result.Quantized);
        Assert.AreEqual(0, result.Skipped);
        Assert.AreEqual(6 * preset.Vit.Depth, before["MatMul"]);
        Assert.AreEqual(2 * preset.Vit.Depth, after["MatMul"]);
        Assert.AreEqual(4 * preset.Vit.Depth, after["MatMulInteger"]);
        Assert.AreEqual(4 * preset.Vit.Depth, after["DynamicQuantizeLinear"]);
        Assert.IsFalse(int8.Graph.Initializer.Any(t => t.Name.EndsWith(".weight_t", StringComparison.Ordinal)), "float weights are dropped");
        Assert.AreEqual(4 * preset.Vit.Depth, int8.Graph.Initializer.Count(t => t.DataType == (int)TensorProto.Types.DataType.Int8));
        Assert.IsEmpty(OnnxModelCheck.Problems(int8));
        Assert.IsLessThan(0.3 * result.WeightBytesBefore, (double)result.WeightBytesAfter);
        Assert.AreEqual(DynamicInt8Quantizer.Precision, int8.MetadataProps.Single(p => p.Key == OnnxMetadata.Precision).Value);
        Assert.AreEqual("fp32", fp32.MetadataProps.Single(p => p.Key == OnnxMetadata.Precision).Value, "the input model is not changed");

        var (a, b) = Embeddings(fp32, int8, preset, 8);
        var cmp = OnnxVerifier.Compare(b, a, 8);
        TestContext.WriteLine($"micro ViT int8 vs fp32: {cmp}");
        Assert.IsGreaterThanOrEqualTo(VerifyResult.Int8CosineMin, cmp.CosineMin, cmp.ToString());
        Assert.IsGreaterThan(1e-6, cmp.MaxAbsDiff, "int8 must actually change the numbers");

        // Against TorchSharp, through the verifier: judged by the int8 cosine bound.
        var verify = OnnxVerifier.Verify(int8, backbone, preset, batch: 8, seed: 3);
        Assert.IsTrue(verify.Int8);
        Assert.IsTrue(verify.Passed, verify.ToString());
    }

    [TestMethod]
    public void MicroResNet_WithHead_HeadMatMulIsInt8_ConvolutionsStayFloat()
    {
        var preset = ExportTestModels.MicroResNet;
        using var backbone = ExportTestModels.Build(preset);
        manual_seed(5);
        using var weight = randn(10, backbone.FeatureDim) * 0.1;
        using var bias = randn(10) * 0.1;
        var fp32 = OnnxExporter.Export(backbone, preset, new ExportOptions { Head = LinearHead.FromTensors(weight, bias) });
        var result = DynamicInt8Quantizer.Quantize(fp32);
        Assert.AreEqual(1, result.Quantized);
        Assert.IsFalse(OpCounts(result.Model).ContainsKey("MatMul"));
        Assert.AreEqual(OpCounts(fp32)["Conv"], OpCounts(result.Model)["Conv"]);

        var (emb32, emb8) = Embeddings(fp32, result.Model, preset, 8);
        CollectionAssert.AreEqual(emb32, emb8, "the ResNet backbone has no MatMul: its embedding is unchanged");
        var (logits32, logits8) = Embeddings(fp32, result.Model, preset, 8, OnnxMetadata.LogitsName);
        var cmp = OnnxVerifier.Compare(logits8, logits32, 8);
        TestContext.WriteLine($"micro ResNet head logits int8 vs fp32: {cmp}");
        Assert.IsGreaterThanOrEqualTo(VerifyResult.Int8CosineMin, cmp.CosineMin, cmp.ToString());
        Assert.IsGreaterThan(0.0, cmp.MaxAbsDiff);

        // Without a head there is nothing to quantise, and the message says why.
        var bare = OnnxExporter.Export(backbone, preset, new ExportOptions());
        var error = Assert.ThrowsExactly<InvalidOperationException>(() => DynamicInt8Quantizer.Quantize(bare));
        StringAssert.Contains(error.Message, "nothing to quantise");
    }

    [TestMethod]
    public void QuantisingTwiceOrAnFp16Model_IsRefused()
    {
        var preset = TestPresets.MicroVit;
        using var backbone = ExportTestModels.Build(preset);
        var int8 = DynamicInt8Quantizer.Quantize(OnnxExporter.Export(backbone, preset, new ExportOptions())).Model;
        Assert.IsTrue(DynamicInt8Quantizer.IsQuantized(int8));
        var twice = Assert.ThrowsExactly<InvalidOperationException>(() => DynamicInt8Quantizer.Quantize(int8));
        StringAssert.Contains(twice.Message, "already int8-dynamic");
        var fp16 = OnnxExporter.Export(backbone, preset, new ExportOptions { Fp16 = true });
        StringAssert.Contains(Assert.ThrowsExactly<InvalidOperationException>(() => DynamicInt8Quantizer.Quantize(fp16)).Message, "fp16");
    }

    [TestMethod]
    public void QuantizedModel_RoundTripsThroughSave_AndRunsFromTheFile()
    {
        var preset = TestPresets.MicroVit;
        using var backbone = ExportTestModels.Build(preset);
        var fp32 = OnnxExporter.Export(backbone, preset, new ExportOptions());
        var int8 = DynamicInt8Quantizer.Quantize(fp32).Model;
        string path = Path.Combine(ExportTestModels.TempFolder(), "int8.onnx");
        OnnxExporter.Save(int8, path);
        var loaded = ModelProto.Parser.ParseFrom(File.ReadAllBytes(path));
        Assert.AreEqual(1, loaded.MetadataProps.Count(p => p.Key == OnnxMetadata.Digest), "the file carries its digest");
        OnnxDigest.Remove(loaded); // the file is the model saved plus its digest (see Integrity/OnnxDigestTests)
        Assert.AreEqual(int8, loaded);
        Assert.AreEqual(DynamicInt8Quantizer.Precision, loaded.MetadataProps.Single(p => p.Key == OnnxMetadata.Precision).Value);
        // int8 weights: the file is well under half the float32 one.
        Assert.IsLessThan(0.5 * fp32.CalculateSize(), (double)new FileInfo(path).Length);

        using var pixels = TorchReference.RandomPixels(4, preset.Input.Channels, preset.Input.ImageSize, seed: 9);
        float[] input = TensorData.ToFloatArray(pixels);
        using var fromFile = new OnnxModelRunner(path);
        using var inMemory = new OnnxModelRunner(int8.ToByteArray());
        Assert.AreEqual(DynamicInt8Quantizer.Precision, fromFile.Precision);
        CollectionAssert.AreEqual(inMemory.Embed(input, 4), fromFile.Embed(input, 4));
    }

    [TestMethod]
    public void WeightColumns_AreSymmetricInt8_WithOneScalePerColumn()
    {
        // [k=3, n=2]: column 0 max |w| = 2, column 1 all zero (scale 1, all zeros).
        float[] w = [0.5f, 0f, -2f, 0f, 1.5f, 0f];
        var (q, scale) = DynamicInt8Quantizer.QuantizeColumns(w, 3, 2, 127);
        CollectionAssert.AreEqual(new[] { 2f / 127, 1f }, scale);
        CollectionAssert.AreEqual(new sbyte[] { 32, 0, -127, 0, 95, 0 }, q.Select(b => (sbyte)b).ToArray()); // 31.75, 95.25
        var (q7, scale7) = DynamicInt8Quantizer.QuantizeColumns(w, 3, 2, 63);
        Assert.AreEqual(2f / 63, scale7[0]);
        CollectionAssert.AreEqual(new sbyte[] { 16, 0, -63, 0, 47, 0 }, q7.Select(b => (sbyte)b).ToArray()); // 15.75, 47.25
    }

    [TestMethod]
    public void OrtFusions_OfTheMicroVit_Fp32AndInt8()
    {
        var preset = TestPresets.MicroVit;
        using var backbone = ExportTestModels.Build(preset);
        var fp32 = OnnxExporter.Export(backbone, preset, new ExportOptions());
        var int8 = DynamicInt8Quantizer.Quantize(fp32).Model;
        string folder = ExportTestModels.TempFolder();
        foreach (var (name, model) in new[] { ("fp32", fp32), ("int8", int8) })
        {
            string optimized = Path.Combine(folder, name + ".optimized.onnx");
            using (var options = OrtCpuOptions.Create(optimizedModelPath: optimized))
            using (new OnnxModelRunner(model.ToByteArray(), options)) { }
            var ops = OpCounts(ModelProto.Parser.ParseFrom(File.ReadAllBytes(optimized)));
            TestContext.WriteLine($"{name}: " + string.Join(", ", ops.OrderBy(p => p.Key).Select(p => $"{p.Key} {p.Value}")));
            int depth = preset.Vit.Depth;
            // Both: the exact-erf GELU is one op, the attention scale folds into its MatMul, q/k/v Gathers become a Split,
            // and the opset-17 LayerNormalization stays one op (one residual Add + LayerNorm becomes SkipLayerNormalization).
            Assert.IsFalse(ops.ContainsKey("Erf"), $"{name}: GELU fused");
            Assert.AreEqual(depth, ops["FusedMatMul"], $"{name}: q·kᵀ·scale fused");
            Assert.AreEqual(depth, ops["Split"]);
            Assert.AreEqual(2 * depth + 1, ops["LayerNormalization"] + ops.GetValueOrDefault("SkipLayerNormalization"));
            // Attention itself (MatMul-Softmax-MatMul) is not fused by ORT's CPU optimiser for this layout.
            Assert.AreEqual(depth, ops["Softmax"]);
            if (name == "fp32")
            {
                Assert.AreEqual(depth, ops["BiasGelu"]);
                Assert.AreEqual(5 * depth, ops["MatMul"], "4 weight MatMuls (bias Add kept) + probs·v per block");
            }
            else
            {
                // DynamicQuantizeLinear -> MatMulInteger -> Cast -> Mul (-> bias Add) became one kernel, for every weight.
                Assert.AreEqual(4 * depth, ops["DynamicQuantizeMatMul"]);
                Assert.IsFalse(ops.ContainsKey("MatMulInteger") || ops.ContainsKey("DynamicQuantizeLinear"), "int8 chain fused");
                Assert.AreEqual(depth, ops["MatMul"], "only probs·v stays float32");
                Assert.AreEqual(depth, ops["Gelu"], "the fc1 bias went into DynamicQuantizeMatMul");
            }
        }
    }
}
