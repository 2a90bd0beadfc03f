namespace MoCoV3.Eval.Probe;

/// <summary>What one linear probe measured on the test split, and where it wrote its files.</summary>
public sealed record ProbeResult
{
    /// <summary>Which features were probed: <c>encoder</c>, <c>raw-pixels</c> or <c>random-init</c>.</summary>
    public required string Name { get; init; }

    /// <summary>Top-1 accuracy on the test split, in [0, 1].</summary>
    public required double Top1 { get; init; }

    /// <summary>Top-5 accuracy on the test split (top-K with K = the number of classes when there are fewer than 5).</summary>
    public required double Top5 { get; init; }

    /// <summary>The class names, in label order.</summary>
    public required IReadOnlyList<string> ClassNames { get; init; }

    /// <summary>Per class (label order): the fraction of its test images predicted as it (its recall); NaN for a class with none.</summary>
    public required IReadOnlyList<double> PerClassAccuracy { get; init; }

    /// <summary>Test images per true class (rows) and predicted class (columns).</summary>
    public required IReadOnlyList<IReadOnlyList<double>> ConfusionMatrix { get; init; }

    /// <summary>The L2 weight chosen on the held-out split.</summary>
    public required float BestL2 { get; init; }

    /// <summary>Held-out top-1 accuracy of each L2 weight tried, in the order tried.</summary>
    public required IReadOnlyList<(float L2, double Accuracy)> Sweep { get; init; }

    /// <summary>The width of the features the linear classifier saw.</summary>
    public required int FeatureDim { get; init; }

    public required int TrainCount { get; init; }
    public required int TestCount { get; init; }

    /// <summary>Wall-clock seconds of each stage, in the order run (load, featurize, sweep, fit, evaluate, save).</summary>
    public required IReadOnlyList<StageTime> Stages { get; init; }

    /// <summary>The saved ML.NET model: raw pixels in (<c>input</c>), <c>PredictedLabel</c> and <c>Score</c> out.</summary>
    public required string ModelPath { get; init; }
    public required string ReportPath { get; init; }
    public required string ConfusionMatrixPath { get; init; }

    /// <summary>Seconds spent in the stage named <paramref name="stage"/>, 0 if it did not run.</summary>
    public double Seconds(string stage) => Stages.Where(s => s.Stage == stage).Sum(s => s.Seconds);
}
