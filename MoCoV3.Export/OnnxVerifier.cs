using MoCoV3.Inference;
using MoCoV3.Models;
using static TorchSharp.torch;

namespace MoCoV3.Export;

/// <summary>
/// Checks an exported model against its source: the same batch through ONNX Runtime and through the backbone in
/// TorchSharp (<see cref="TorchReference"/>), compared value by value and image by image.
/// </summary>
public static class OnnxVerifier
{
    public const int DefaultBatch = 16;

    /// <summary>Verifies the model file at <paramref name="onnxPath"/> (external data is found beside it).</summary>
    /// <param name="pixels">float32 <c>[N, C, H, W]</c> in [0, 1]; random (seeded) when null.</param>
    public static VerifyResult Verify(string onnxPath, Backbone backbone, ModelPreset preset, Tensor? pixels = null,
                                      int batch = DefaultBatch, int seed = 0)
    {
        using var runner = new OnnxModelRunner(onnxPath);
        return Verify(runner, backbone, preset, pixels, batch, seed);
    }

    /// <summary>Verifies an in-memory model (it must not use external data).</summary>
    public static VerifyResult Verify(Onnx.ModelProto model, Backbone backbone, ModelPreset preset, Tensor? pixels = null,
                                      int batch = DefaultBatch, int seed = 0)
    {
        ArgumentNullException.ThrowIfNull(model);
        using var runner = new OnnxModelRunner(Google.Protobuf.MessageExtensions.ToByteArray(model));
        return Verify(runner, backbone, preset, pixels, batch, seed);
    }

    public static VerifyResult Verify(OnnxModelRunner runner, Backbone backbone, ModelPreset preset, Tensor? pixels = null,
                                      int batch = DefaultBatch, int seed = 0)
    {
        ArgumentNullException.ThrowIfNull(runner);
        ArgumentNullException.ThrowIfNull(backbone);
        ArgumentNullException.ThrowIfNull(preset);
        using var scope = NewDisposeScope();
        if (pixels is null)
        {
            if (batch <= 0) throw new ArgumentException($"verify batch must be positive, found {batch}");
            pixels = TorchReference.RandomPixels(batch, preset.Input.Channels, preset.Input.ImageSize, seed);
        }
        if (pixels.dim() != 4 || pixels.shape[1] != runner.Channels || pixels.shape[2] != runner.Height || pixels.shape[3] != runner.Width)
            throw new ArgumentException($"pixels [{string.Join(",", pixels.shape)}] do not fit the model input [N,{runner.Channels},{runner.Height},{runner.Width}]");
        int n = (int)pixels.shape[0];

        float[] onnx = runner.Embed(TensorData.ToFloatArray(pixels), n);
        float[] torch = TorchReference.Embed(backbone, preset, pixels);
        return Compare(onnx, torch, n) with { Fp16 = runner.Precision == "fp16", Int8 = runner.Precision == Quantization.DynamicInt8Quantizer.Precision };
    }

    /// <summary>
    /// Checks the <c>logits</c> output of a classifier exported with <paramref name="head"/> against the head on the
    /// backbone's class token in TorchSharp, on <paramref name="pixels"/> (float32 <c>[N, C, H, W]</c> in [0, 1]).
    /// </summary>
    /// <exception cref="InvalidDataException">The file has no <c>logits</c> output, or one of another width; the message names the file.</exception>
    public static VerifyResult VerifyLogits(string onnxPath, Backbone backbone, LinearHead head, ModelPreset preset, Tensor pixels)
    {
        ArgumentNullException.ThrowIfNull(pixels);
        using var runner = new OnnxModelRunner(onnxPath);
        int n = (int)pixels.shape[0];
        var outputs = runner.Run(TensorData.ToFloatArray(pixels), n);
        if (!outputs.TryGetValue(OnnxMetadata.LogitsName, out var onnx))
            throw new InvalidDataException($"{onnxPath}: the model has no '{OnnxMetadata.LogitsName}' output");
        float[] torch = TorchReference.Logits(backbone, head, preset, pixels);
        if (onnx.Length != torch.Length)
            throw new InvalidDataException($"{onnxPath}: output '{OnnxMetadata.LogitsName}' has {onnx.Length / n} values per image, the head has {head.Classes} classes");
        return Compare(onnx, torch, n) with { Fp16 = runner.Precision == "fp16", Int8 = runner.Precision == Quantization.DynamicInt8Quantizer.Precision };
    }

    /// <summary>Max |a − b|, the smallest per-row cosine and max |b| of two <c>[rows, D]</c> arrays (<paramref name="b"/>: the reference).</summary>
    public static VerifyResult Compare(float[] a, float[] b, int rows)
    {
        if (a.Length != b.Length || rows <= 0 || a.Length % rows != 0)
            throw new ArgumentException($"cannot compare {a.Length} and {b.Length} values as {rows} rows");
        int d = a.Length / rows;
        double maxAbs = 0, cosMin = double.PositiveInfinity, scale = 0;
        for (int r = 0; r < rows; r++)
        {
            double dot = 0, na = 0, nb = 0;
            for (int j = r * d; j < (r + 1) * d; j++)
            {
                double x = a[j], y = b[j];
                double diff = Math.Abs(x - y);
                if (double.IsNaN(diff) || diff > maxAbs) maxAbs = double.IsNaN(diff) ? double.NaN : Math.Max(maxAbs, diff);
                scale = Math.Max(scale, Math.Abs(y));
                dot += x * y;
                na += x * x;
                nb += y * y;
            }
            double cos = na == 0 && nb == 0 ? 1 : dot / Math.Sqrt(na * nb);
            cosMin = double.IsNaN(cos) ? double.NaN : Math.Min(cosMin, cos);
        }
        return new VerifyResult(maxAbs, cosMin, rows) { ReferenceMaxAbs = scale };
    }
}
