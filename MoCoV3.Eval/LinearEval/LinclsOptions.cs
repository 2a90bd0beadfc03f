using MoCoV3.Checkpoints;
using MoCoV3.Data;
using MoCoV3.Runtime;
using MoCoV3.Eval.Classification;
using MoCoV3.Models;

namespace MoCoV3.Eval.LinearEval;

/// <summary>
/// What a linear-evaluation run is asked to do. The defaults follow moco-v3's <c>main_lincls.py</c> (recipe §2.1):
/// 90 epochs, SGD momentum 0.9, weight decay 0, per-epoch cosine, lr = base × batch/256 with base 3 (ViT) or 0.1
/// (ResNet), RandomResizedCrop + flip for training, Resize(256)/CenterCrop(224) — scaled to the input size — for testing.
/// </summary>
public sealed record LinclsOptions
{
    /// <summary>The pretrained encoder whose frozen features the head reads.</summary>
    public required WeightsOptions Weights { get; init; }
    /// <summary>Run folder: metrics.csv (one row per epoch), checkpoint.pth (backbone + head), preset.json, results.json.</summary>
    public required string OutputDir { get; init; }
    /// <summary>
    /// When set, the classifier (backbone + head) is also exported to this ONNX file (outputs <c>logits</c> and
    /// <c>embedding</c>, the training data's class names in the metadata) and checked against TorchSharp on test images.
    /// </summary>
    public string? OnnxPath { get; init; }

    /// <summary>Train and test images; the limits take the first N of each split.</summary>
    public DataOptions Data { get; init; } = new();

    public int Epochs { get; init; } = 90;
    /// <summary>Official default 1024 (4 GPUs x 256); 256 suits one device.</summary>
    public int Batch { get; init; } = 256;
    /// <summary>Base lr (× batch / 256); null means <see cref="DefaultBaseLr"/>: the preset's <c>lincls.base_lr</c>, else 3 for a ViT, 0.1 for a ResNet.</summary>
    public double? BaseLr { get; init; }
    public double Momentum { get; init; } = 0.9;
    public double WeightDecay { get; init; }
    /// <summary>
    /// Standardise the frozen features (per dimension, by their mean and std over training images) before the head, as the
    /// ML.NET probe does; folded into the head's weights at the end, so the saved and exported classifier is a plain linear
    /// head. Null means the preset's <c>lincls.standardize</c>, else off (the official protocol).
    /// </summary>
    public bool? Standardize { get; init; }
    /// <summary>Random-resized-crop minimum area; null means the preset's <c>lincls.crop_min</c>, else the official 0.08.</summary>
    public double? CropMin { get; init; }
    /// <summary>Test centre-crop share; null means the preset's <c>lincls.eval_crop</c>, else the official 0.875.</summary>
    public double? EvalCropRatio { get; init; }

    public long Seed { get; init; }
    public ComputeOptions Compute { get; init; } = new();
    public int EvalBatch { get; init; } = 256;
    /// <summary>Test images run through ONNX Runtime and TorchSharp to check the export (with <see cref="OnnxPath"/>).</summary>
    public int VerifyBatch { get; init; } = 16;

    /// <summary>The official base learning rates: <c>--lr=3</c> for ViTs, the 0.1 default for ResNets.</summary>
    public static double OfficialBaseLr(ModelPreset preset) => preset.IsVit ? 3.0 : 0.1;

    /// <summary>The base lr when none is given: the preset's <see cref="LinclsConfig.BaseLr"/>, else <see cref="OfficialBaseLr"/>.</summary>
    public static double DefaultBaseLr(ModelPreset preset) => preset.Lincls.BaseLr ?? OfficialBaseLr(preset);

    /// <summary>The official random-resized-crop minimum area of <c>main_lincls.py</c>.</summary>
    public const double OfficialCropMin = 0.08;
}
