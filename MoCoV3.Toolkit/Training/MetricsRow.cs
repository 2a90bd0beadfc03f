namespace MoCoV3.Training;

/// <summary>One logged training step: a row of <c>metrics.csv</c>.</summary>
public sealed record MetricsRow
{
    public long Step { get; init; }
    public double Epoch { get; init; }
    public double Loss { get; init; }
    public double Lr { get; init; }
    public double Momentum { get; init; }
    /// <summary>L2 norm of all gradients of the step, before <c>--clip-grad</c>.</summary>
    public double GradNorm { get; init; }
    public double ImgPerS { get; init; }
    public double ElapsedS { get; init; }
    /// <summary>kNN top-1 accuracy in [0, 1] measured after this step (<c>--knn-every</c>); null where not measured.</summary>
    public double? KnnTop1 { get; init; }
    /// <summary>Gradient norm of the first trained layer (see <see cref="WatchedLayers"/>), before clipping; null in older files.</summary>
    public double? GradNormFirst { get; init; }
    /// <summary>Gradient norm of the last block, before clipping; null in older files.</summary>
    public double? GradNormLast { get; init; }
    /// <summary>Instability warnings of this step (<see cref="InstabilityMonitor"/>), ';'-separated; empty when none.</summary>
    public string Warnings { get; init; } = "";
}
