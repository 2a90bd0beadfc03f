using MoCoV3.Inference;
using MoCoV3.Export;
using MoCoV3.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace MoCoV3.Eval.Classification;

/// <summary>How closely ONNX Runtime reproduces a TorchSharp classifier on one batch: logits and embedding.</summary>
public sealed record ClassifierVerifyResult(VerifyResult Logits, VerifyResult Embedding)
{
    public bool Passed => Logits.Passed && Embedding.Passed;
}

/// <summary>
/// Exports an <see cref="BackboneClassifier"/> with <see cref="OnnxExporter"/> (outputs <c>embedding</c> and <c>logits</c>;
/// input pixels in [0, 1], the preset's normalisation inside the graph) and checks it: the same images through ONNX
/// Runtime and through the model in TorchSharp (eval mode, CPU), compared value by value.
/// </summary>
public static class ClassifierExport
{
    /// <summary>Writes the ONNX file. The model is moved to the CPU and left in eval mode.</summary>
    public static Onnx.ModelProto Export(BackboneClassifier model, ModelPreset preset, string path, IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        model.to(CPU);
        model.eval();
        var head = LinearHead.FromTensors(model.Head.weight!, model.Head.bias!);
        return OnnxExporter.ExportToFile(model.Backbone, preset, new ExportOptions { Head = head, ExtraMetadata = metadata }, path);
    }

    /// <param name="pixels">float32 <c>[N, C, H, W]</c> in [0, 1] at the model's input size.</param>
    public static ClassifierVerifyResult Verify(string onnxPath, BackboneClassifier model, ModelPreset preset, Tensor pixels)
    {
        ArgumentNullException.ThrowIfNull(pixels);
        using var runner = new OnnxModelRunner(onnxPath);
        int n = (int)pixels.shape[0];
        var outputs = runner.Run(TensorData(pixels), n);
        if (!outputs.TryGetValue(OnnxMetadata.LogitsName, out var onnxLogits))
            throw new InvalidDataException($"{onnxPath}: the model has no '{OnnxMetadata.LogitsName}' output");

        model.to(CPU);
        bool wasTraining = model.training;
        model.eval();
        try
        {
            using var scope = NewDisposeScope();
            using var noGrad = no_grad();
            var shape = new long[] { 1, preset.Channels, 1, 1 };
            var mean = tensor(preset.Mean.Select(v => (float)v).ToArray(), shape);
            var std = tensor(preset.Std.Select(v => (float)v).ToArray(), shape);
            var embedding = model.Backbone.forward((pixels.to_type(ScalarType.Float32).cpu() - mean) / std);
            var logits = model.Head.forward(embedding);
            return new ClassifierVerifyResult(
                OnnxVerifier.Compare(onnxLogits, TensorData(logits), n),
                OnnxVerifier.Compare(outputs[OnnxMetadata.EmbeddingName], TensorData(embedding), n));
        }
        finally
        {
            model.train(wasTraining);
        }
    }

    /// <summary>The first <paramref name="count"/> images of a dataset as float32 <c>[N, C, H, W]</c> in [0, 1].</summary>
    public static Tensor Pixels(Data.IImageDataset data, int count)
    {
        int n = Math.Min(count, data.Count);
        if (n == 0) throw new InvalidDataException($"{data.Source}: no images");
        var bytes = new byte[(long)n * data.Channels * data.Height * data.Width];
        data.ReadBatch(Enumerable.Range(0, n).ToArray(), bytes, new long[n]);
        using var raw = tensor(bytes, [n, data.Channels, data.Height, data.Width]);
        return raw.to_type(ScalarType.Float32) / 255.0;
    }

    private static float[] TensorData(Tensor t)
    {
        using var scope = NewDisposeScope();
        return t.detach().cpu().to_type(ScalarType.Float32).contiguous().data<float>().ToArray();
    }
}
