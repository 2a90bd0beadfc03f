using MoCoV3.Data;
using static TorchSharp.torch;

namespace MoCoV3.Eval.Classification;

/// <summary>Top-1 / top-5 accuracy (percent) of a classifier on a labelled set.</summary>
public sealed record AccuracyResult(double Top1, double Top5, long Count);

/// <summary>The evaluation loop shared by fine-tuning and linear evaluation: every image once, in order, no gradient.</summary>
public static class ClassifierEvaluation
{
    /// <param name="logitsOf">Logits of a normalised batch (the caller has put its model in eval mode).</param>
    /// <param name="transform">uint8 batch on the device → normalised input.</param>
    public static AccuracyResult Run(IImageDataset data, int batch, Device device, Func<Tensor, Tensor> transform, Func<Tensor, Tensor> logitsOf)
    {
        ArgumentNullException.ThrowIfNull(data);
        using var noGrad = no_grad();
        using var loader = new PrefetchLoader(data, Math.Min(batch, data.Count), seed: 0, shuffle: false, dropLast: false);
        var accuracy = new TopKAccuracy(5);
        foreach (var images in loader.Epoch(0))
        {
            using var owned = images;
            using var scope = NewDisposeScope();
            var logits = logitsOf(transform(images.Pixels.to(device)));
            accuracy.Add(logits, images.Labels);
        }
        return new AccuracyResult(accuracy.Top1, accuracy.TopK, accuracy.Count);
    }
}
