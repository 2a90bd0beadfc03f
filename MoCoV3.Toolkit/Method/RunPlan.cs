namespace MoCoV3.Method;

/// <summary>
/// The schedule a run follows, fixed before its first optimiser step (or, with <c>--minutes</c>, after timing
/// the first steps) and stored in every checkpoint, so a resumed run follows the same curves.
/// </summary>
public sealed record RunPlan
{
    public required int Batch { get; init; }
    public required int StepsPerEpoch { get; init; }
    public required long TotalSteps { get; init; }
    public required double PeakLr { get; init; }
    public required double WarmupEpochs { get; init; }
    public required long Seed { get; init; }

    /// <summary>Length of the run in (fractional) epochs: the T of the cosine schedules.</summary>
    public double Epochs => (double)TotalSteps / StepsPerEpoch;

    /// <summary>
    /// The warmup to use for a run of <paramref name="epochs"/>: the preset's warmup, shortened in proportion
    /// when the run is shorter than the preset's schedule (e.g. vit-small: 40 of 300 epochs = 13%).
    /// </summary>
    public static double FitWarmup(double presetWarmup, double presetEpochs, double epochs) =>
        Math.Min(presetWarmup, epochs * presetWarmup / presetEpochs);
}
