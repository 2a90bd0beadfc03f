using MoCoV3.Data;
using MoCoV3.Eval.Embed;
using MoCoV3.Evaluation;

namespace MoCoV3.Eval.Knn;

/// <summary>What <see cref="KnnEvaluator.Run"/> evaluates. Null means "the default".</summary>
public sealed record KnnOptions
{
    /// <summary>The exported encoder (<c>mocov3 export</c>).</summary>
    public required string Encoder { get; init; }
    /// <summary>The data: its train split is the bank, its test split the queries; <see cref="DataOptions.Limit"/> takes at most
    /// that many images of each split, spread evenly over it.</summary>
    public DataOptions Data { get; init; } = new();
    /// <summary>Separate query data (e.g. a second CSV manifest); default: the test split of <see cref="Data"/>.</summary>
    public string? Test { get; init; }
    public int K { get; init; } = KnnClassifier.DefaultK;
    public double Temperature { get; init; } = KnnClassifier.DefaultTemperature;
    public int Batch { get; init; } = OnnxEmbedder.DefaultBatch;
    public string Device { get; init; } = "cpu";
}
