using MoCoV3.Distributed;

namespace MoCoV3.Training;

/// <summary>
/// <c>--minutes</c> for a training loop (pretraining and fine-tuning share it): the run length is fixed once the speed
/// of the steps is known. Steps are timed after <see cref="WarmupSteps"/> warm-up steps: at least
/// <see cref="MinTimedSteps"/> and at most <see cref="MaxTimedSteps"/>, and until 30 s (or 1% of a shorter budget) have
/// passed. The first steps of a CPU run are slower than the rest (a 5-step sample fitted 4,353 steps to a 90-minute
/// pretraining budget that holds ~5,400), so a short sample underfills the budget; the share stays well under a fitted
/// warmup, because the timed steps run before the schedules are fitted (at 5% a 10-minute run's fitted warmup was over
/// when timing ended).
/// </summary>
public sealed class TimeBudget
{
    public const int WarmupSteps = 2, MinTimedSteps = 5, MaxTimedSteps = 50;
    private const double TimingSeconds = 30, TimingShare = 0.01;

    private double timingStart;

    public TimeBudget(double minutes)
    {
        if (!(double.IsFinite(minutes) && minutes > 0)) throw new ArgumentOutOfRangeException(nameof(minutes), minutes, "--minutes must be positive");
        Minutes = minutes;
    }

    public double Minutes { get; }

    public double Seconds => Minutes * 60;

    /// <summary>Steps timed when the length was fixed (0 before).</summary>
    public long TimedSteps { get; private set; }

    /// <summary>Seconds per step measured over <see cref="TimedSteps"/>.</summary>
    public double SecondsPerStep { get; private set; }

    /// <summary>The total number of steps the budget holds, once fixed; null while timing.</summary>
    public long? TotalSteps { get; private set; }

    /// <summary>
    /// Called after each optimiser step: <paramref name="step"/> steps are done, <paramref name="timingSeconds"/> is the
    /// clock the steps are timed on (training only, e.g. without evaluations) and <paramref name="elapsedSeconds"/> the
    /// run's wall time so far. Returns the total step count when this call fixes it, else null.
    /// </summary>
    public long? OnStep(long step, double timingSeconds, double elapsedSeconds)
    {
        if (TotalSteps is not null) return null;
        if (step == WarmupSteps) timingStart = timingSeconds;
        long timed = step - WarmupSteps;
        if (timed < MinTimedSteps) return null;
        double spent = timingSeconds - timingStart;
        if (timed < MaxTimedSteps && spent < Math.Min(TimingSeconds, TimingShare * Seconds)) return null;
        TimedSteps = timed;
        SecondsPerStep = spent / timed;
        long remaining = (long)Math.Floor(Math.Max(0, Seconds - elapsedSeconds) / Math.Max(SecondsPerStep, 1e-6));
        TotalSteps = Math.Max(step, step + remaining);
        return TotalSteps;
    }

    /// <summary>
    /// <see cref="OnStep(long, double, double)"/> in a data-parallel run: rank 0's clock decides and every rank receives
    /// its decision (the total, the timed steps and their speed), so all ranks fix the same length after the same step.
    /// Each rank timing its own steps could fix different lengths, and the rank that stopped first would leave the others
    /// waiting in a collective. Rank 0's clock is the one that counts: it alone runs the kNN evaluations and writes the
    /// checkpoints, which its <paramref name="timingSeconds"/> leaves out. Every rank must call this after every step until
    /// the length is fixed (one broadcast of three numbers per call).
    /// </summary>
    public long? OnStep(long step, double timingSeconds, double elapsedSeconds, ICommunicator ranks)
    {
        ArgumentNullException.ThrowIfNull(ranks);
        if (ranks.Size == 1) return OnStep(step, timingSeconds, elapsedSeconds);
        if (TotalSteps is not null) return null;
        double[] decision = [-1, 0, 0];
        if (ranks.Rank == 0 && OnStep(step, timingSeconds, elapsedSeconds) is long total)
            decision = [total, TimedSteps, SecondsPerStep];
        ranks.Broadcast<double>(decision, 0);
        if (decision[0] < 0) return null;
        (TotalSteps, TimedSteps, SecondsPerStep) = ((long)decision[0], (long)decision[1], decision[2]);
        return TotalSteps;
    }
}
