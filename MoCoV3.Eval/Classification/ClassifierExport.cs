using MoCoV3.Inference;
using MoCoV3.Export;
using MoCoV3.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace MoCoV3.Eval.Classification;

/// <summary>
/// How closely ONNX Runtime reproduces a TorchSharp classifier on one batch: the <c>logits</c> (the head on the last
/// block's class token) and the <c>embedding</c> (the preset's, e.g. 1024 values for <c>cls+mean@last4</c> at width 128).
/// </summary>
public sealed record ClassifierVerifyResult(VerifyResult Logits, VerifyResult Embedding)
{
    public bool Passed => Logits.Passed && Embedding.Passed;
}

/// <summary>
/// Exports an <see cref="BackboneClassifier"/> with <see cref="OnnxExporter"/> (outputs <c>embedding</c> and <c>logits</c>;
/// input pixels in [0, 1], the preset's normalisation inside the graph) and checks it: the same images through ONNX
/// Runtime and through the model in TorchSharp (eval mode, CPU), compared value by value: <c>logits</c> with
/// <c>model.forward</c>, <c>embedding</c> with <see cref="Backbone.Embed"/> (not <c>forward</c>: the two differ for every
/// ViT embedding but <c>cls</c>).
/// </summary>
public static class ClassifierExport
{
    /// <summary>Writes the ONNX file. The model is moved to the CPU and left in eval mode.</summary>
    /// <param name="classNames">
    /// The names of the head's classes in output order (the training data's <c>ClassNames</c>), stored as
    /// <see cref="OnnxMetadata.ClassNames"/> so that <c>ImageClassifier</c> returns them; as many as the head has classes.
    /// </param>
    public static Onnx.ModelProto Export(BackboneClassifier model, ModelPreset preset, string path, IReadOnlyList<string> classNames,
                                         IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(classNames);
        if (classNames.Count != model.Classes)
            throw new ArgumentException($"{path}: {classNames.Count} class names for a head of {model.Classes} classes");
        model.to(CPU);
        model.eval();
        var head = LinearHead.FromTensors(model.Head.weight!, model.Head.bias!);
        return OnnxExporter.ExportToFile(model.Backbone, preset, new ExportOptions { Head = head, ClassNames = classNames, ExtraMetadata = metadata }, path);
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
        if (!outputs.TryGetValue(OnnxMetadata.EmbeddingName, out var onnxEmbedding))
            throw new InvalidDataException($"{onnxPath}: the model has no '{OnnxMetadata.EmbeddingName}' output");

        model.to(CPU);
        bool wasTraining = model.training;
        model.eval();
        try
        {
            using var scope = NewDisposeScope();
            using var noGrad = no_grad();
            var shape = new long[] { 1, preset.Input.Channels, 1, 1 };
            var mean = tensor(preset.Input.Mean.Select(v => (float)v).ToArray(), shape);
            var std = tensor(preset.Input.Std.Select(v => (float)v).ToArray(), shape);
            var x = (pixels.to_type(ScalarType.Float32).cpu() - mean) / std;
            // The graph's 'embedding' is the preset's embedding (Embed); its 'logits' read the class token (forward).
            var embedding = model.Backbone.Embed(x);
            var logits = model.forward(x);
            return new ClassifierVerifyResult(
                Compare(onnxPath, OnnxMetadata.LogitsName, onnxLogits, TensorData(logits), n),
                Compare(onnxPath, OnnxMetadata.EmbeddingName, onnxEmbedding, TensorData(embedding), n));
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

    /// <summary>Compares one output; a width that differs from TorchSharp's is an error naming the file and the output.</summary>
    private static VerifyResult Compare(string onnxPath, string output, float[] onnx, float[] torch, int rows)
    {
        if (onnx.Length != torch.Length)
            throw new InvalidDataException($"{onnxPath}: output '{output}' has {onnx.Length / rows} values per image, " +
                                           $"the model in TorchSharp gives {torch.Length / rows}: the file does not hold this model");
        return OnnxVerifier.Compare(onnx, torch, rows);
    }

    private static float[] TensorData(Tensor t)
    {
        using var scope = NewDisposeScope();
        return t.detach().cpu().to_type(ScalarType.Float32).contiguous().data<float>().ToArray();
    }
}
