using MoCoV3.Checkpoints;
using MoCoV3.Data;
using MoCoV3.Runtime;
using MoCoV3.Models;

namespace MoCoV3.Eval.FineTune;

/// <summary>
/// What a <c>finetune</c> run is asked to do. The defaults are DeiT's recipe as MoCo v3 uses it (recipe §2.2):
/// AdamW, lr 5e-4 × batch/512, wd 0.05 (none on biases, norms, pos_embed, cls_token), warmup + cosine per
/// iteration, label smoothing 0.1, Mixup 0.8 / CutMix 1.0 (switch 0.5), drop path 0.1, RandomResizedCrop + flip.
/// </summary>
public sealed record FineTuneOptions
{
    /// <summary>The pretrained weights: any checkpoint <c>CheckpointImporter</c> reads (a null arch takes the checkpoint's own preset or detects it).</summary>
    public required WeightsOptions Weights { get; init; }
    /// <summary>The ONNX classifier to write.</summary>
    public required string OnnxPath { get; init; }
    /// <summary>Run folder: metrics.csv, checkpoint.pth (timm/torchvision layout with the head), preset.json, results.json.</summary>
    public required string OutputDir { get; init; }

    /// <summary>Train and test images; the limits take the first N of each split.</summary>
    public DataOptions Data { get; init; } = new();

    public double? Epochs { get; init; }
    public long? MaxSteps { get; init; }
    /// <summary>Time budget: the run length is fitted to it after timing the first steps.</summary>
    public double? Minutes { get; init; }
    /// <summary>Run length when neither epochs, steps nor minutes are given (the transfer recipe's 100).</summary>
    public const double DefaultEpochs = 100;

    public int Batch { get; init; } = 64;
    public double BaseLr { get; init; } = 5e-4;
    /// <summary>Peak lr; null means <see cref="BaseLr"/> × batch / 512.</summary>
    public double? Lr { get; init; }
    public double WeightDecay { get; init; } = 0.05;
    /// <summary>Warmup in steps; null means 5 epochs, at most 5% of the run.</summary>
    public long? WarmupSteps { get; init; }
    public double DropPath { get; init; } = 0.1;
    public double LabelSmoothing { get; init; } = 0.1;
    public double MixupAlpha { get; init; } = 0.8;
    public double CutmixAlpha { get; init; } = 1.0;
    public double MixSwitchProb { get; init; } = 0.5;
    public double MixProb { get; init; } = 1.0;
    /// <summary>Smallest area fraction of RandomResizedCrop (torchvision's default 0.08).</summary>
    public double CropMin { get; init; } = 0.08;
    /// <summary>Test view: 1 = the plain image; 0.875 = Resize(256)/CenterCrop(224) scaled to the input size.</summary>
    public double EvalCropRatio { get; init; } = 1.0;

    public long Seed { get; init; }
    public ComputeOptions Compute { get; init; } = new();
    public int LogEvery { get; init; } = 10;
    public int EvalBatch { get; init; } = 256;
    /// <summary>Test images run through ONNX Runtime and TorchSharp to check the export.</summary>
    public int VerifyBatch { get; init; } = 16;
}
