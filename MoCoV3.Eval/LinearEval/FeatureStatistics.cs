using MoCoV3.Data;
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

    /// <summary>Measures the embedding of the first <paramref name="maxImages"/> images of <paramref name="data"/> (their eval view).</summary>
    public static FeatureStatistics Measure(Backbone backbone, IImageDataset data, Func<Tensor, Tensor> transform, int batch, Device device, int maxImages)
    {
        ArgumentNullException.ThrowIfNull(backbone);
        ArgumentNullException.ThrowIfNull(data);
        IImageDataset sample = data.Count > maxImages ? new SubsetDataset(data, maxImages) : data;
        using var noGrad = no_grad();
        using var loader = new PrefetchLoader(sample, Math.Min(batch, sample.Count), seed: 0, shuffle: false, dropLast: false);
        return Of(loader.Epoch(0).Select(images =>
        {
            using var owned = images;
            using var scope = NewDisposeScope();
            return backbone.Embed(transform(images.Pixels.to(device))).to(float64).MoveToOuterDisposeScope();
        }));
    }

    /// <summary>The statistics of feature batches (<c>[N, D]</c> each; disposed here), accumulated in float64.</summary>
    public static FeatureStatistics Of(IEnumerable<Tensor> batches)
    {
        ArgumentNullException.ThrowIfNull(batches);
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
            using var mean64 = sum / count;
            // Population variance, floored at 1e-6 so that a constant dimension is left at 0 rather than blown up.
            using var variance = (squares / count - mean64.square()).clamp_min(0);
            var inverseStd = (variance + 1e-6).rsqrt().to(float32);
            return new FeatureStatistics(mean64.to(float32), inverseStd, checked((int)count));
        }
        finally
        {
            sum?.Dispose();
            squares?.Dispose();
        }
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
