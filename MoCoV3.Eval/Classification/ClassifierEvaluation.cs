using MoCoV3.Data;
using MoCoV3.Distributed;
using static TorchSharp.torch;

namespace MoCoV3.Eval.Classification;

/// <summary>Top-1 / top-5 accuracy (percent) of a classifier on a labelled set.</summary>
public sealed record AccuracyResult(double Top1, double Top5, long Count);

/// <summary>
/// The evaluation loop shared by fine-tuning and linear evaluation: every image once, in order, no gradient. In a
/// data-parallel run every rank evaluates its share of the images (<see cref="BatchSlice.Spread"/>) and the hit counts
/// are summed over the ranks, so every rank returns the accuracy of the whole set.
/// </summary>
public static class ClassifierEvaluation
{
    /// <param name="logitsOf">Logits of a normalised batch (the caller has put its model in eval mode).</param>
    /// <param name="transform">uint8 batch on the device → normalised input.</param>
    /// <param name="ranks">The ranks of a data-parallel run (every rank must call this), or null for one process.</param>
    public static AccuracyResult Run(IImageDataset data, int batch, Device device, Func<Tensor, Tensor> transform, Func<Tensor, Tensor> logitsOf,
                                     ICommunicator? ranks = null)
    {
        ArgumentNullException.ThrowIfNull(data);
        var accuracy = new TopKAccuracy(5);
        IImageDataset share = data;
        if (ranks is { Size: > 1 })
        {
            var rows = BatchSlice.Spread(data.Count, ranks.Rank, ranks.Size);
            share = new DatasetRange(data, rows.Offset, rows.Count);
        }
        if (share.Count > 0)
        {
            using var noGrad = no_grad();
            using var loader = new PrefetchLoader(share, Math.Min(batch, share.Count), seed: 0, shuffle: false, dropLast: false);
            foreach (var images in loader.Epoch(0))
            {
                using var owned = images;
                using var scope = NewDisposeScope();
                var logits = logitsOf(transform(images.Pixels.to(device)));
                accuracy.Add(logits, images.Labels);
            }
        }
        if (ranks is not { Size: > 1 }) return new AccuracyResult(accuracy.Top1, accuracy.TopK, accuracy.Count);
        long[] counts = [accuracy.Top1Hits, accuracy.TopKHits, accuracy.Count];
        ranks.AllReduceSum<long>(counts);
        return counts[2] == 0 ? new AccuracyResult(0, 0, 0) : new AccuracyResult(100.0 * counts[0] / counts[2], 100.0 * counts[1] / counts[2], counts[2]);
    }
}
