using System.Text.Json.Serialization;

namespace MoCoV3.Models;

/// <summary>
/// The <c>lincls</c> group of a <see cref="ModelPreset"/>: linear-evaluation settings for presets whose features want other
/// values than the official <c>main_lincls.py</c> recipe. Every field is optional: null (absent in JSON) keeps the official value.
/// None of them changes what pretraining trains.
/// </summary>
public sealed record LinclsConfig
{
    /// <summary>The largest <see cref="BaseLr"/> accepted.</summary>
    public const double MaxBaseLr = 1000;

    /// <summary>
    /// The base learning rate of <c>mocov3 lincls</c> (lr = this × batch / 256); null keeps the official value (3 for a ViT,
    /// 0.1 for a ResNet: moco-v3's <c>main_lincls.py</c> on ImageNet).
    /// </summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public double? BaseLr { get; init; }

    /// <summary>Standardise the frozen features before the head (see <c>LinclsOptions.Standardize</c>); null: no standardisation (official).</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public bool? Standardize { get; init; }

    /// <summary>
    /// The random-resized-crop minimum area (official: 0.08), for images that want another (28-px Fashion-MNIST loses the
    /// garment's edges to it).
    /// </summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public double? CropMin { get; init; }

    /// <summary>The test centre-crop share (official: 0.875, Resize 256 / CenterCrop 224).</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public double? EvalCrop { get; init; }

    /// <summary>Whether any field is set (the JSON group is written only then).</summary>
    [JsonIgnore]
    public bool IsEmpty => BaseLr is null && Standardize is null && CropMin is null && EvalCrop is null;

    internal void Validate(Action<bool, string> require)
    {
        require(BaseLr is null || (double.IsFinite(BaseLr.Value) && BaseLr.Value is > 0 and <= MaxBaseLr),
            $"lincls.base_lr must be in (0, {MaxBaseLr}] when given, found {BaseLr}");
        require(CropMin is null or > 0 and <= 1, $"lincls.crop_min must be in (0, 1] when given, found {CropMin}");
        require(EvalCrop is null or > 0 and <= 1, $"lincls.eval_crop must be in (0, 1] when given, found {EvalCrop}");
    }
}
