using MoCoV3.Eval.Classification;

namespace MoCoV3.Eval.FineTune;

/// <summary>One logged fine-tuning step (a row of metrics.csv).</summary>
public sealed record FineTuneLogRow(long Step, long TotalSteps, double Epoch, double Loss, double Lr, double ImagesPerSecond, double ElapsedSeconds);

/// <summary>Where a fine-tuning run ended: its length, test accuracy, files, and the ONNX check.</summary>
public sealed record FineTuneResult
{
    public required long Steps { get; init; }
    public required double Epochs { get; init; }
    public required double ElapsedSeconds { get; init; }
    public required AccuracyResult Test { get; init; }
    public required string Checkpoint { get; init; }
    public required string OnnxPath { get; init; }
    /// <summary>How closely ONNX Runtime reproduced the classifier; null on the ranks other than 0 of a data-parallel run (rank 0 alone exports).</summary>
    public required ClassifierVerifyResult? Verify { get; init; }
    /// <summary>The training loss of every logged step.</summary>
    public required IReadOnlyList<double> Losses { get; init; }
}
