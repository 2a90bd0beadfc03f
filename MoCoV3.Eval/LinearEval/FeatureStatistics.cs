using MoCoV3.Data;
using MoCoV3.Distributed;
using MoCoV3.Eval.Classification;
using MoCoV3.Models;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MoCoV3.Eval.LinearEval;

/// <summary>
/// Per-dimension mean and standard deviation of a frozen backbone's embedding, for linear evaluation on standardised
/// features (<see cref="LinclsOptions.Standardize"/>). Training on <c>(f - mean) / std</c> and folding the statistics into
/// the head afterwards gives a plain linear head on the raw embedding: <c>W (f - m) / s + b = (W / s) f + (b - (W / s) m)</c>.
/// </summary>
public sealed class FeatureStatistics : IDisposable
{
    private readonly Tensor mean;
    private readonly Tensor inverseStd;

    private FeatureStatistics(Tensor mean, Tensor inverseStd, int count)
    {
        this.mean = mean;
        this.inverseStd = inverseStd;
        Count = count;
    }

    /// <summary>Images the statistics were measured on.</summary>
    public int Count { get; }

    /// <summary>
    /// Measures the embedding of the first <paramref name="maxImages"/> images of <paramref name="data"/> (their eval view).
    /// In a data-parallel run (<paramref name="ranks"/> of several; every rank calls this) each rank embeds its share of those
    /// images (<see cref="BatchSlice.Spread"/>) and the float64 sums are all-reduced, so every rank gets the statistics of
    /// all of them, equal to one process's up to the order of the sums, in 1/n of the time.
    /// </summary>
    public static FeatureStatistics Measure(Backbone backbone, IImageDataset data, Func<Tensor, Tensor> transform, int batch, Device device, int maxImages,
                                            ICommunicator? ranks = null)
    {
        ArgumentNullException.ThrowIfNull(backbone);
        ArgumentNullException.ThrowIfNull(data);
        IImageDataset sample = data.Count > maxImages ? new SubsetDataset(data, maxImages) : data;
        if (ranks is { Size: > 1 })
        {
            var rows = BatchSlice.Spread(sample.Count, ranks.Rank, ranks.Size);
            sample = new DatasetRange(sample, rows.Offset, rows.Count);
        }
        using var noGrad = no_grad();
        var (sum, squares, count) = sample.Count == 0
            ? (zeros(backbone.EmbeddingDim, float64, device), zeros(backbone.EmbeddingDim, float64, device), 0L)
            : Sums(Embeddings(backbone, sample, transform, batch, device));
        try
        {
            if (ranks is { Size: > 1 })
            {
                ranks.AllReduceSum(sum);
                ranks.AllReduceSum(squares);
                long[] total = [count];
                ranks.AllReduceSum<long>(total);
                count = total[0];
            }
            return From(sum, squares, count);
        }
        finally
        {
            sum.Dispose();
            squares.Dispose();
        }
    }

    /// <summary>The statistics of feature batches (<c>[N, D]</c> each; disposed here), accumulated in float64.</summary>
    public static FeatureStatistics Of(IEnumerable<Tensor> batches)
    {
        ArgumentNullException.ThrowIfNull(batches);
        var (sum, squares, count) = Sums(batches);
        using (sum)
        using (squares)
            return From(sum, squares, count);
    }

    private static IEnumerable<Tensor> Embeddings(Backbone backbone, IImageDataset sample, Func<Tensor, Tensor> transform, int batch, Device device)
    {
        using var loader = new PrefetchLoader(sample, Math.Min(batch, sample.Count), seed: 0, shuffle: false, dropLast: false);
        foreach (var images in loader.Epoch(0))
            yield return Embed(images); // the dispose scope closes before the yield: the caller's tensors must not land in it

        Tensor Embed(ImageBatch images)
        {
            using var owned = images;
            using var scope = NewDisposeScope();
            return backbone.Embed(transform(images.Pixels.to(device))).to(float64).MoveToOuterDisposeScope();
        }
    }

    /// <summary>Σ f and Σ f² per dimension (float64, on the batches' device) and the row count of feature batches (disposed here).</summary>
    private static (Tensor Sum, Tensor Squares, long Count) Sums(IEnumerable<Tensor> batches)
    {
        Tensor? sum = null, squares = null;
        long count = 0;
        try
        {
            foreach (var batch in batches)
            {
                using var features = batch.to(float64);
                using var batchSum = features.sum([0L]);   // not sum(0): a literal 0 converts to the ScalarType overload
                using var batchSquares = features.square().sum([0L]);
                sum = sum is null ? batchSum.clone() : sum.add_(batchSum);
                squares = squares is null ? batchSquares.clone() : squares.add_(batchSquares);
                count += features.shape[0];
                batch.Dispose();
            }
            if (sum is null || squares is null || count == 0) throw new ArgumentException("no features to measure", nameof(batches));
            return (sum, squares, count);
        }
        catch
        {
            sum?.Dispose();
            squares?.Dispose();
            throw;
        }
    }

    private static FeatureStatistics From(Tensor sum, Tensor squares, long count)
    {
        if (count == 0) throw new ArgumentException("no features to measure");
        using var mean64 = sum / count;
        // Population variance, floored at 1e-6 so that a constant dimension is left at 0 rather than blown up.
        using var variance = (squares / count - mean64.square()).clamp_min(0);
        var inverseStd = (variance + 1e-6).rsqrt().to(float32);
        return new FeatureStatistics(mean64.to(float32), inverseStd, checked((int)count));
    }

    public Tensor Standardize(Tensor features) => (features - mean) * inverseStd;

    /// <summary>Makes <paramref name="head"/> read raw features: the statistics move into its weight and bias.</summary>
    public void FoldInto(Linear head)
    {
        ArgumentNullException.ThrowIfNull(head);
        using var noGrad = no_grad();
        head.weight!.mul_(inverseStd.unsqueeze(0));
        head.bias!.sub_(head.weight!.matmul(mean));
    }

    public void Dispose()
    {
        mean.Dispose();
        inverseStd.Dispose();
    }
}
