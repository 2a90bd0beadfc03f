namespace MoCoV3.Eval.FineTune;

/// <summary>
/// The DeiT learning-rate schedule, per iteration: linear warmup from <c>warmup_lr</c> (1e-6) to the peak, then a
/// half cosine from the peak to <c>min_lr</c> (1e-5, or the peak when that is lower) at the last step.
/// </summary>
public sealed record FineTuneSchedule(double PeakLr, long WarmupSteps, long TotalSteps, double WarmupLr = 1e-6, double MinLr = 1e-5)
{
    /// <summary>The lr of 0-based step <paramref name="step"/>.</summary>
    public double LearningRate(long step)
    {
        double warmupLr = Math.Min(WarmupLr, PeakLr), minLr = Math.Min(MinLr, PeakLr);
        if (step < WarmupSteps) return warmupLr + (PeakLr - warmupLr) * step / WarmupSteps;
        double progress = Math.Clamp((double)(step - WarmupSteps) / Math.Max(1, TotalSteps - WarmupSteps), 0, 1);
        return minLr + (PeakLr - minLr) * 0.5 * (1 + Math.Cos(Math.PI * progress));
    }

    /// <summary>DeiT's 5 warmup epochs, but at most 5% of a shorter run.</summary>
    public static long DefaultWarmupSteps(long totalSteps, int stepsPerEpoch) =>
        Math.Min(5L * stepsPerEpoch, (long)Math.Ceiling(0.05 * totalSteps));

    /// <summary>lr = base × batch / 512 (DeiT's scaling rule).</summary>
    public static double ScaledLearningRate(double baseLr, int batch) => baseLr * batch / 512.0;
}
