using MoCoV3.Data;
using MoCoV3.Runtime;

namespace MoCoV3.Training;

/// <summary>What a <c>pretrain</c> run was asked to do, beyond the preset. Null means "the preset's value".</summary>
public sealed record PretrainOptions
{
    public required string OutputDir { get; init; }
    /// <summary>The training images; <see cref="DataOptions.Limit"/> trains on the first N only (quick runs and tests).</summary>
    public DataOptions Data { get; init; } = new();
    public double? Epochs { get; init; }
    public long? MaxSteps { get; init; }
    public double? Minutes { get; init; }
    public int? Batch { get; init; }
    /// <summary>Peak learning rate (after batch scaling); null means base_lr × batch / 256.</summary>
    public double? Lr { get; init; }
    public double? WarmupEpochs { get; init; }
    public ComputeOptions Compute { get; init; } = new();
    /// <summary>bf16 mixed precision of the forward pass (see <see cref="Models.Autocast"/>); false = fp32.</summary>
    public bool Amp { get; init; }
    /// <summary>A run folder or checkpoint file to continue, or "auto" (the output folder's checkpoint if any).</summary>
    public string? Resume { get; init; }
    /// <summary>Initial weights: a checkpoint of this toolkit or an official moco-v3 .pth.tar.</summary>
    public string? Init { get; init; }
    /// <summary><c>mocov3</c> (BYOL asymmetric recipe) or <c>none</c>.</summary>
    public AugmentationRecipe Augment { get; init; } = AugmentationRecipe.MoCoV3;
    public long Seed { get; init; } = 0;
    public int LogEvery { get; init; } = 10;
    /// <summary>Steps between checkpoints; null = once per epoch (and at the end).</summary>
    public long? SaveEvery { get; init; }
    public bool TensorBoard { get; init; } = true;
    /// <summary>Steps between kNN evaluations of the query backbone (and one at the end); null = none.</summary>
    public long? KnnEvery { get; init; }
    /// <summary>Train-split images in the kNN bank (spread evenly over the split).</summary>
    public int KnnTrain { get; init; } = 10000;
    /// <summary>Test-split images classified by kNN (spread evenly over the split).</summary>
    public int KnnTest { get; init; } = 2000;
    /// <summary>Neighbours that vote in the kNN evaluation.</summary>
    public int KnnK { get; init; } = Evaluation.KnnClassifier.DefaultK;
    /// <summary>Clip the joint gradient norm to this before each optimiser step (<see cref="GradientClipping"/>); null = no clipping.</summary>
    public double? ClipGrad { get; init; }
    /// <summary>
    /// What a NaN/inf loss or gradient does: <c>stop</c> (exit, the last checkpoint untouched) or <c>rollback</c> (reload the
    /// last good checkpoint, halve the learning rate, continue; see <see cref="Pretrainer.MaxRollbacks"/>).
    /// </summary>
    public OnNanPolicy OnNan { get; init; } = OnNanPolicy.Stop;
    /// <summary>A logged value above this many times its running median is flagged as a spike (<see cref="InstabilityMonitor"/>).</summary>
    public double SpikeFactor { get; init; } = InstabilityMonitor.DefaultSpikeFactor;
}
