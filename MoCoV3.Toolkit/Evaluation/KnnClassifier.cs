using static TorchSharp.torch;

namespace MoCoV3.Evaluation;

/// <summary>
/// Weighted k-nearest-neighbour classification of embeddings, the protocol of InstDisc (Wu et al. 2018) and DINO:
/// <code>
///   ẑ = z / ‖z‖                                   (train and test embeddings L2-normalised)
///   s_ij = ẑ_test,i · ẑ_train,j                   (cosine similarity)
///   N_i = the k train images with the largest s_ij
///   score_i(c) = Σ_{j ∈ N_i, y_j = c} exp(s_ij / T)
///   prediction = argmax_c score_i(c); top-5 = the 5 classes of largest score
/// </code>
/// The similarities are computed for a chunk of test embeddings at a time, so a 10k × 60k evaluation needs only
/// chunk × train floats at once. Runs on the device of the train embeddings.
/// </summary>
public sealed class KnnClassifier : IDisposable
{
    public const int DefaultK = 20;
    public const double DefaultTemperature = 0.07;

    /// <summary>Similarities held at once: chunk × train ≈ this many floats (64 MB).</summary>
    private const long SimilarityBudget = 16L << 20;

    private readonly Tensor trainEmbeddings;
    private readonly Tensor trainLabels;

    /// <param name="trainEmbeddings">float <c>[N, D]</c>: the labelled bank (normalised here, not in place).</param>
    /// <param name="trainLabels">integer <c>[N]</c> in [0, <paramref name="classes"/>).</param>
    /// <param name="classes">Number of classes.</param>
    /// <param name="k">Neighbours that vote (at most N are used).</param>
    /// <param name="temperature">T of the vote weights exp(s / T).</param>
    public KnnClassifier(Tensor trainEmbeddings, Tensor trainLabels, int classes, int k = DefaultK, double temperature = DefaultTemperature)
    {
        ArgumentNullException.ThrowIfNull(trainEmbeddings);
        ArgumentNullException.ThrowIfNull(trainLabels);
        if (trainEmbeddings.dim() != 2 || trainEmbeddings.shape[0] == 0)
            throw new ArgumentException($"expected train embeddings [N, D] with N > 0, found [{string.Join(", ", trainEmbeddings.shape)}]");
        if (trainLabels.dim() != 1 || trainLabels.shape[0] != trainEmbeddings.shape[0])
            throw new ArgumentException($"expected {trainEmbeddings.shape[0]} train labels, found [{string.Join(", ", trainLabels.shape)}]");
        if (classes < 1) throw new ArgumentOutOfRangeException(nameof(classes), classes, "expected at least one class");
        if (k < 1) throw new ArgumentOutOfRangeException(nameof(k), k, "k must be at least 1");
        if (!(temperature > 0)) throw new ArgumentOutOfRangeException(nameof(temperature), temperature, "the temperature must be positive");

        using (var scope = NewDisposeScope())
        using (no_grad())
        {
            var labels = trainLabels.to(ScalarType.Int64, trainEmbeddings.device);
            long min = labels.min().item<long>(), max = labels.max().item<long>();
            if (min < 0 || max >= classes)
                throw new ArgumentException($"expected train labels in [0, {classes}), found labels from {min} to {max}");
            // The classifier owns its bank: detached from any dispose scope, freed by Dispose.
            this.trainLabels = labels.clone().DetachFromDisposeScope();
            this.trainEmbeddings = nn.functional.normalize(trainEmbeddings.to_type(ScalarType.Float32), dim: 1).DetachFromDisposeScope();
        }
        Classes = classes;
        K = (int)Math.Min(k, trainEmbeddings.shape[0]);
        Temperature = temperature;
    }

    /// <summary>Builds the classifier from flat arrays: <paramref name="embeddings"/> is <c>[labels.Length × dim]</c>.</summary>
    public static KnnClassifier FromArrays(float[] embeddings, long[] labels, int dim, int classes, int k = DefaultK,
        double temperature = DefaultTemperature)
    {
        using var scope = NewDisposeScope();
        return new KnnClassifier(FromFlat(embeddings, labels.Length, dim), tensor(labels), classes, k, temperature);
    }

    public int Classes { get; }

    /// <summary>Neighbours that vote: the requested k, or the bank size when smaller.</summary>
    public int K { get; }

    public double Temperature { get; }

    public int TrainCount => (int)trainEmbeddings.shape[0];

    /// <summary>Queries per similarity matrix; null = as many as fit the 64 MB budget (tests set it to exercise chunking).</summary>
    internal long? QueryChunk { get; init; }

    /// <summary>The class scores Σ exp(s/T) of each query: float <c>[M, classes]</c> (on the bank's device).</summary>
    public Tensor Scores(Tensor queries)
    {
        ArgumentNullException.ThrowIfNull(queries);
        if (queries.dim() != 2 || queries.shape[1] != trainEmbeddings.shape[1])
            throw new ArgumentException($"expected query embeddings [M, {trainEmbeddings.shape[1]}], found [{string.Join(", ", queries.shape)}]");
        using var noGrad = no_grad();
        long m = queries.shape[0];
        long chunk = QueryChunk ?? Math.Max(1, SimilarityBudget / trainEmbeddings.shape[0]);
        var scores = zeros([m, Classes], ScalarType.Float32, trainEmbeddings.device);
        for (long start = 0; start < m; start += chunk)
        {
            using var scope = NewDisposeScope();
            long length = Math.Min(m, start + chunk) - start;
            var q = nn.functional.normalize(queries.narrow(0, start, length).to(ScalarType.Float32, trainEmbeddings.device), dim: 1);
            var similarity = matmul(q, trainEmbeddings.t());
            var (top, index) = similarity.topk(K, dim: 1, largest: true, sorted: true);
            var neighbourLabels = trainLabels[index];
            scores.narrow(0, start, length).scatter_add_(1, neighbourLabels, (top / Temperature).exp_());
        }
        return scores;
    }

    /// <summary>Top-1 and top-5 accuracy of the queries with their true labels.</summary>
    public KnnResult Evaluate(Tensor queries, Tensor labels)
    {
        ArgumentNullException.ThrowIfNull(labels);
        if (labels.dim() != 1 || labels.shape[0] != queries.shape[0])
            throw new ArgumentException($"expected {queries.shape[0]} query labels, found [{string.Join(", ", labels.shape)}]");
        if (queries.shape[0] == 0) throw new ArgumentException("no query embeddings to classify");
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var scores = Scores(queries);
        var truth = labels.to(ScalarType.Int64, scores.device).unsqueeze(1);
        var (_, ranked) = scores.topk(Math.Min(5, Classes), dim: 1, largest: true, sorted: true);
        var hits = ranked.eq(truth);
        double n = queries.shape[0];
        double top1 = hits.select(1, 0).sum().item<long>() / n;
        double top5 = hits.sum(1).gt(0).sum().item<long>() / n;
        return new KnnResult(top1, top5, TrainCount, (int)queries.shape[0], K, Temperature);
    }

    /// <summary><see cref="Evaluate(Tensor, Tensor)"/> from flat arrays: <paramref name="queries"/> is <c>[labels.Length × dim]</c>.</summary>
    public KnnResult Evaluate(float[] queries, long[] labels)
    {
        using var scope = NewDisposeScope();
        return Evaluate(FromFlat(queries, labels.Length, (int)trainEmbeddings.shape[1]), tensor(labels));
    }

    public void Dispose()
    {
        trainEmbeddings.Dispose();
        trainLabels.Dispose();
    }

    private static Tensor FromFlat(float[] values, int rows, int dim)
    {
        ArgumentNullException.ThrowIfNull(values);
        if (dim < 1 || values.LongLength != (long)rows * dim)
            throw new ArgumentException($"expected {rows} embeddings of {dim} values = {(long)rows * dim} floats, found {values.LongLength}");
        return tensor(values, [rows, dim]);
    }
}

/// <summary>What a kNN evaluation measured: accuracies in [0, 1] over <paramref name="Test"/> queries.</summary>
public sealed record KnnResult(double Top1, double Top5, int Train, int Test, int K, double Temperature);
