namespace MoCoV3.Training;

/// <summary>One logged training step: a row of <c>metrics.csv</c>.</summary>
public sealed record MetricsRow
{
    public long Step { get; init; }
    public double Epoch { get; init; }
    public double Loss { get; init; }
    public double Lr { get; init; }
    public double Momentum { get; init; }
    public double GradNorm { get; init; }
    public double ImgPerS { get; init; }
    public double ElapsedS { get; init; }
    /// <summary>kNN top-1 accuracy in [0, 1] measured after this step (<c>--knn-every</c>); null where not measured.</summary>
    public double? KnnTop1 { get; init; }
}
