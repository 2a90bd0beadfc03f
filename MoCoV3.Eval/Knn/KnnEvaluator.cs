using System.Diagnostics;
using MoCoV3.Data;
using MoCoV3.Eval.Embed;
using MoCoV3.Evaluation;

namespace MoCoV3.Eval.Knn;

/// <summary>
/// kNN evaluation of an exported encoder: both splits embedded in ONNX Runtime, then classified by
/// <see cref="KnnClassifier"/> (cosine similarity, k neighbours voting with weights exp(s/T)).
/// </summary>
public static class KnnEvaluator
{
    /// <param name="progress">Notes while it runs (what is embedded).</param>
    /// <param name="embedded">Called with (split, images embedded so far, images of that split) after each batch.</param>
    public static KnnReport Run(KnnOptions options, Action<string>? progress = null, Action<string, int, int>? embedded = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.Data.Limit is < 1) throw new ArgumentException($"--limit must be at least 1, got {options.Data.Limit}");
        using var embedder = new OnnxEmbedder(options.Encoder, options.Device);
        var train = options.Data.Open(embedder.ImageSize, embedder.Channels, train: true);
        var test = (options.Test is null ? options.Data : options.Data with { Path = options.Test }).Open(embedder.ImageSize, embedder.Channels, train: false);
        int limit = options.Data.Limit ?? int.MaxValue;
        var subsets = KnnSubsets.Choose(train, test, limit, limit);

        var clock = Stopwatch.StartNew();
        progress?.Invoke($"embedding {subsets.Train.Length} train images of {train.Source}");
        var bank = embedder.Embed(train, subsets.Train, options.Batch, done => embedded?.Invoke("train", done, subsets.Train.Length));
        progress?.Invoke($"embedding {subsets.Test.Length} test images of {test.Source}" + (subsets.HeldOut ? " (held out of the bank)" : ""));
        var queries = embedder.Embed(test, subsets.Test, options.Batch, done => embedded?.Invoke("test", done, subsets.Test.Length));
        double embedSeconds = clock.Elapsed.TotalSeconds;

        clock.Restart();
        using var classifier = KnnClassifier.FromArrays(bank.Values, bank.Labels, bank.Dim, train.ClassNames.Count, options.K, options.Temperature);
        var result = classifier.Evaluate(queries.Values, queries.Labels);
        return new KnnReport(result, train.Source, test.Source, subsets.HeldOut, embedSeconds, clock.Elapsed.TotalSeconds);
    }
}
