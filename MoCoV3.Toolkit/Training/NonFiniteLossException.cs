namespace MoCoV3.Training;

/// <summary>The loss (or the gradient norm) became NaN or infinite; the run stopped without overwriting the last good checkpoint.</summary>
public sealed class NonFiniteLossException(long step, double loss, string? lastCheckpoint, string what = "loss", string? note = null)
    : Exception($"{what} is {loss} at step {step}; stopped. " + (note is null ? "" : note + " ") +
        (lastCheckpoint is null ? "No checkpoint was written yet." : $"The last good checkpoint is {lastCheckpoint} (resume with --resume).") +
        " Try a lower --lr or a longer warmup.")
{
    public long Step { get; } = step;
    public double Loss { get; } = loss;
}
