using MoCoV3.Eval.Classification;
using MoCoV3.Models;

namespace MoCoV3.Eval.LinearEval;

/// <summary>
/// The linear-eval settings a run takes, resolved once from its options and the checkpoint's preset: each from the
/// option when given, else the preset's <c>lincls_*</c> field, else the official value of <c>main_lincls.py</c>.
/// </summary>
public sealed record LinclsSettings
{
    public required double BaseLr { get; init; }
    /// <summary>Where <see cref="BaseLr"/> came from, for the run's first line and results.json.</summary>
    public required string BaseLrSource { get; init; }
    /// <summary><see cref="BaseLr"/> × batch / 256.</summary>
    public required double PeakLr { get; init; }
    public required double CropMin { get; init; }
    public required double EvalCrop { get; init; }
    public required bool Standardize { get; init; }
    /// <summary>The shipped preset's settings an older checkpoint's preset lacks and no option overrides (<c>--option value</c>).</summary>
    public required IReadOnlyList<string> MissedShippedSettings { get; init; }

    public static LinclsSettings Resolve(LinclsOptions o, ModelPreset preset)
    {
        ArgumentNullException.ThrowIfNull(o);
        ArgumentNullException.ThrowIfNull(preset);
        double baseLr = o.BaseLr ?? LinclsOptions.DefaultBaseLr(preset);
        double cropMin = o.CropMin ?? preset.Lincls.CropMin ?? LinclsOptions.OfficialCropMin;
        double evalCrop = o.EvalCropRatio ?? preset.Lincls.EvalCrop ?? ImageTransforms.ImageNetCropRatio;
        if (cropMin is not (> 0 and <= 1)) throw new ArgumentException($"--crop-min must be in (0, 1], found {cropMin}");
        if (evalCrop is not (> 0 and <= 1)) throw new ArgumentException($"--eval-crop must be in (0, 1], found {evalCrop}");
        return new LinclsSettings
        {
            BaseLr = baseLr,
            BaseLrSource = o.BaseLr is not null ? "--lr" : preset.Lincls.BaseLr is not null ? "the preset's lincls.base_lr" : "the official default",
            PeakLr = baseLr * o.Batch / 256.0,
            CropMin = cropMin,
            EvalCrop = evalCrop,
            Standardize = o.Standardize ?? preset.Lincls.Standardize ?? false,
            MissedShippedSettings = Missed(o, preset),
        };
    }

    private static List<string> Missed(LinclsOptions o, ModelPreset preset)
    {
        var missed = new List<string>();
        if (PresetCatalog.All().FirstOrDefault(p => p.Name == preset.Name) is not { } shipped) return missed;
        if (o.BaseLr is null && preset.Lincls.BaseLr is null && shipped.Lincls.BaseLr is { } lr) missed.Add(FormattableString.Invariant($"--lr {lr}"));
        if (o.CropMin is null && preset.Lincls.CropMin is null && shipped.Lincls.CropMin is { } crop) missed.Add(FormattableString.Invariant($"--crop-min {crop}"));
        if (o.EvalCropRatio is null && preset.Lincls.EvalCrop is null && shipped.Lincls.EvalCrop is { } eval) missed.Add(FormattableString.Invariant($"--eval-crop {eval}"));
        if (o.Standardize is null && preset.Lincls.Standardize is null && shipped.Lincls.Standardize is { } standardize)
            missed.Add($"--standardize {standardize.ToString().ToLowerInvariant()}");
        return missed;
    }
}
