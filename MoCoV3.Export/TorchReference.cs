using MoCoV3.Data;
using MoCoV3.Models;
using static TorchSharp.torch;

namespace MoCoV3.Export;

/// <summary>The backbone in TorchSharp as the exported graph computes it: eval mode, no gradient, normalised input.</summary>
public static class TorchReference
{
    /// <summary>Embeddings <c>[N * D]</c> of pixels <c>[N, C, H, W]</c> in [0, 1]; the backbone's training flag is restored afterwards.</summary>
    public static float[] Embed(Backbone backbone, ModelPreset preset, Tensor pixels) =>
        Evaluate(backbone, preset, pixels, (x, _) => backbone.Embed(x));

    /// <summary>
    /// Logits <c>[N * classes]</c> of a linear <paramref name="head"/> on what it was trained on (<see cref="Backbone.HeadInput"/>:
    /// the class token, or the preset's whole embedding for a head of that width), as the exported graph's <c>logits</c>
    /// output computes them.
    /// </summary>
    public static float[] Logits(Backbone backbone, LinearHead head, ModelPreset preset, Tensor pixels)
    {
        ArgumentNullException.ThrowIfNull(head);
        return Evaluate(backbone, preset, pixels, (x, device) =>
        {
            var weight = tensor(head.Weight, [head.Classes, head.InFeatures], device: device);
            var bias = tensor(head.Bias, [head.Classes], device: device);
            return nn.functional.linear(backbone.HeadInput(x, head.InFeatures), weight, bias);
        });
    }

    /// <summary>
    /// Runs <paramref name="compute"/> on the normalised pixels on the backbone's device, in eval mode with no gradient,
    /// and restores the backbone's training flag afterwards.
    /// </summary>
    private static float[] Evaluate(Backbone backbone, ModelPreset preset, Tensor pixels, Func<Tensor, Device, Tensor> compute)
    {
        ArgumentNullException.ThrowIfNull(backbone);
        ArgumentNullException.ThrowIfNull(preset);
        ArgumentNullException.ThrowIfNull(pixels);
        bool wasTraining = backbone.training;
        backbone.eval();
        try
        {
            using var scope = NewDisposeScope();
            using var noGrad = no_grad();
            var device = backbone.parameters().FirstOrDefault()?.device ?? CPU;
            var x = pixels.to_type(ScalarType.Float32).to(device);
            var shape = new long[] { 1, preset.Input.Channels, 1, 1 };
            var mean = tensor(preset.Input.Mean.Select(v => (float)v).ToArray(), shape, device: device);
            var std = tensor(preset.Input.Std.Select(v => (float)v).ToArray(), shape, device: device);
            return TensorData.ToFloatArray(compute((x - mean) / std, device));
        }
        finally
        {
            backbone.train(wasTraining);
        }
    }

    /// <summary><paramref name="batch"/> random images in [0, 1] from <paramref name="seed"/>, as a float32 tensor <c>[N, C, H, W]</c>.</summary>
    public static Tensor RandomPixels(int batch, int channels, int size, int seed = 0)
    {
        var random = new Random(seed);
        var data = new float[(long)batch * channels * size * size];
        for (long i = 0; i < data.LongLength; i++) data[i] = random.NextSingle();
        return tensor(data, [batch, channels, size, size]);
    }

    /// <summary>
    /// The first <paramref name="count"/> images of <paramref name="dataset"/> (fewer if it is smaller) as float32
    /// <c>[N, C, H, W]</c> in [0, 1]: the real images <c>--verify</c> compares on.
    /// </summary>
    /// <exception cref="InvalidDataException">The dataset has no images.</exception>
    public static Tensor FirstImages(IImageDataset dataset, int count)
    {
        ArgumentNullException.ThrowIfNull(dataset);
        int n = Math.Min(count, dataset.Count);
        if (n <= 0) throw new InvalidDataException($"{dataset.Source}: no images to verify with");
        var bytes = new byte[(long)n * dataset.Channels * dataset.Height * dataset.Width];
        dataset.ReadBatch(Enumerable.Range(0, n).ToArray(), bytes, new long[n]);
        using var raw = tensor(bytes, [n, dataset.Channels, dataset.Height, dataset.Width]);
        return raw.to_type(ScalarType.Float32).div_(255f);
    }
}
