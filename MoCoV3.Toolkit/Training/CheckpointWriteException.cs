namespace MoCoV3.Training;

/// <summary>A checkpoint could not be written (disk full, permissions); the run stopped and the previous checkpoint is intact.</summary>
public sealed class CheckpointWriteException(string path, long step, string? previousPath, long? previousStep, Exception inner)
    : Exception($"cannot write the checkpoint of step {step} to {path}: {inner.Message.TrimEnd('.')}. " +
        (previousStep is long previous
            ? $"The previous checkpoint {previousPath} (step {previous}) is intact; free space or fix permissions, then continue with --resume auto."
            : "No checkpoint was written yet; free space or fix permissions and start again."), inner)
{
    public long Step { get; } = step;
    public long? PreviousStep { get; } = previousStep;
}
