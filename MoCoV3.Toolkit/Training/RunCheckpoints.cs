using MoCoV3.Checkpoints;
using MoCoV3.Method;

using MoCoV3.Optim;

namespace MoCoV3.Training;

/// <summary>
/// The checkpoints of one pretraining run: written atomically to one path, and read back by <c>--on-nan rollback</c>, which
/// reloads the last good one (at most <see cref="MaxRollbacks"/> times; the learning rate is halved each time by the caller).
/// </summary>
internal sealed class RunCheckpoints(string path, MoCo model, ITrainingOptimizer optimizer, string? resumedFrom, long step)
{
    /// <summary>Rollbacks before the run gives up (the learning rate is then 1/1024 of the schedule's).</summary>
    public const int MaxRollbacks = 10;

    /// <summary>The last checkpoint written or resumed from, and its step; null before the first.</summary>
    public string? Last { get; private set; } = resumedFrom;
    public long? LastStep { get; private set; } = resumedFrom is null ? null : step;

    public string Path => path;

    /// <summary>Writes the model, optimiser state and <paramref name="header"/>; an I/O failure names the last good checkpoint.</summary>
    public void Save(CheckpointHeader header)
    {
        try
        {
            CheckpointFile.Save(path, header, model, optimizer);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new CheckpointWriteException(path, header.Step, Last, LastStep, e);
        }
        Last = path;
        LastStep = header.Step;
    }

    /// <summary>
    /// Reloads the last good checkpoint into the model and optimiser after <paramref name="what"/> became
    /// <paramref name="value"/> at <paramref name="step"/>; throws <see cref="NonFiniteLossException"/> when there is none
    /// or the learning rate has been halved <see cref="MaxRollbacks"/> times already.
    /// </summary>
    public CheckpointHeader RollBack(long step, double lrScale, string what, double value)
    {
        if (Last is null || lrScale <= Math.Pow(0.5, MaxRollbacks))
            throw new NonFiniteLossException(step, value, Last, what,
                Last is null ? "Nothing to roll back to." : $"Gave up after {MaxRollbacks} rollbacks (learning rate × {lrScale}).");
        return CheckpointFile.Load(Last, model, optimizer);
    }
}
