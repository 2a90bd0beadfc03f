namespace MoCoV3.Eval.Probe;

/// <summary>The wall-clock time of one stage of a probe (see <see cref="ProbeStages"/>).</summary>
public readonly record struct StageTime(string Stage, double Seconds);

/// <summary>The stage names of <see cref="ProbeResult.Stages"/>.</summary>
public static class ProbeStages
{
    public const string Load = "load";
    public const string FeaturizeTrain = "featurize-train";
    public const string FeaturizeTest = "featurize-test";
    public const string Sweep = "sweep";
    public const string Fit = "fit";
    public const string Evaluate = "evaluate";
    public const string Save = "save";
}
