using MoCoV3.Eval.Classification;

namespace MoCoV3.Eval.LinearEval;

/// <summary>One epoch of linear evaluation: mean training loss, the lr it used, and test accuracy after it.</summary>
public sealed record LinclsEpoch(int Epoch, int Epochs, double Loss, double Lr, double Top1, double Top5, double ElapsedSeconds);

/// <summary>Where a linear-evaluation run ended.</summary>
public sealed record LinclsResult
{
    public required IReadOnlyList<LinclsEpoch> History { get; init; }
    /// <summary>Test accuracy after the last epoch.</summary>
    public double Top1 => History[^1].Top1;
    public double Top5 => History[^1].Top5;
    /// <summary>The best top-1 of any epoch (what main_lincls.py calls best_acc1).</summary>
    public double BestTop1 => History.Max(e => e.Top1);
    public required long TestCount { get; init; }
    public required string Checkpoint { get; init; }
    public required double ElapsedSeconds { get; init; }
    /// <summary>The exported ONNX classifier (<see cref="LinclsOptions.OnnxPath"/>), or null.</summary>
    public string? OnnxPath { get; init; }
    /// <summary>How closely ONNX Runtime reproduced the classifier, when it was exported.</summary>
    public ClassifierVerifyResult? Verify { get; init; }
}
