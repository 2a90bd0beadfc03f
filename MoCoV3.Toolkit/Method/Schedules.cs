namespace MoCoV3.Method;

/// <summary>
/// The per-iteration schedules of MoCo v3, as functions of the fractional epoch t (epoch + step/steps_per_epoch).
/// </summary>
public static class Schedules
{
    /// <summary>lr = base_lr × batch / 256 (the linear scaling rule).</summary>
    public static double ScaledLearningRate(double baseLr, int batch) => baseLr * batch / 256.0;

    /// <summary>
    /// Linear warmup from 0 to <paramref name="peakLr"/> over <paramref name="warmupEpochs"/>, then a half-cycle
    /// cosine to 0 at <paramref name="epochs"/>.
    /// </summary>
    public static double LearningRate(double t, double peakLr, double warmupEpochs, double epochs)
    {
        if (t < warmupEpochs) return peakLr * t / warmupEpochs;
        double progress = Math.Min(1.0, (t - warmupEpochs) / Math.Max(epochs - warmupEpochs, 1e-12));
        return peakLr * 0.5 * (1.0 + Math.Cos(Math.PI * progress));
    }

    /// <summary>Momentum of f_k: m = 1 − ½(1 + cos(π t / T))(1 − m0), from m0 at t = 0 to 1 at t = T.</summary>
    public static double Momentum(double t, double epochs, double m0)
    {
        double progress = Math.Min(1.0, t / epochs);
        return 1.0 - 0.5 * (1.0 + Math.Cos(Math.PI * progress)) * (1.0 - m0);
    }
}
