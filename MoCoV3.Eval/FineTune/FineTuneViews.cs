using MoCoV3.Data;
using MoCoV3.Distributed;
using MoCoV3.Eval.Classification;
using MoCoV3.Augment;
using static TorchSharp.torch;

namespace MoCoV3.Eval.FineTune;

/// <summary>
/// One fine-tuning step's images and soft targets for this rank's rows: RandomResizedCrop + flip, then Mixup/CutMix, all
/// drawn from one generator per (seed, step). In a data-parallel run the draws are made for the whole global batch and
/// the slice's rows applied, so n ranks see what one process sees; an image's Mixup/CutMix partner is its mirrored row of
/// the global batch (rows [o, o + c) pair with [n − o − c, n − o)), which this rank augments too.
/// </summary>
/// <remarks>
/// Which rows a rank reads: its own (<see cref="ImageBatch.Rows"/> = the slice), and with Mixup/CutMix on, the rows of
/// its partners too (<see cref="PartnerRows"/>, the rank whose slice mirrors its own), read by a second loader — 2/n of
/// the global batch at n ranks instead of all of it (at 2 ranks that is still the whole batch; for the middle rank of an
/// odd count its own rows are its partners).
/// </remarks>
internal sealed class FineTuneViews(ImageTransforms transforms, MixupCutmix mixing, BatchSlice slice, long seed, int classes, Device device, bool perRankDraws)
{
    /// <summary>
    /// The rows of the global batch that hold this rank's Mixup/CutMix partners (its rows mirrored), when mixing reaches
    /// across ranks; null when a rank needs its own rows alone (one process, mixing off, the per-rank control).
    /// </summary>
    public BatchSlice? PartnerRows => !slice.IsWhole && !perRankDraws && mixing.Enabled
        ? new BatchSlice(slice.GlobalCount - slice.Offset - slice.Count, slice.Count, slice.GlobalCount) : null;

    /// <param name="batch">This rank's rows of the global batch, or the whole global batch.</param>
    /// <param name="step">The optimiser step, which seeds the draws.</param>
    /// <param name="partners">
    /// The rows <see cref="PartnerRows"/> names, when <paramref name="batch"/> holds this rank's rows alone and those are
    /// not its own partners; null otherwise.
    /// </param>
    public (Tensor Images, Tensor Targets) For(ImageBatch batch, long step, ImageBatch? partners = null)
    {
        var rng = NewGenerator(step);
        var pixels = batch.Pixels.to(device);
        var labels = batch.Labels.to(device);
        if (slice.IsWhole) return mixing.Apply(transforms.Train(pixels, rng), labels, classes, rng);
        bool sliced = !batch.Rows.IsWhole; // the loader read this rank's rows alone
        if (sliced && batch.Rows != slice)
            throw new ArgumentException($"fine-tuning rows {Describe(slice)} got a batch of rows {Describe(batch.Rows)}", nameof(batch));
        var own = sliced ? pixels : pixels.narrow(0, slice.Offset, slice.Count);
        var ownLabels = sliced ? labels : labels.narrow(0, slice.Offset, slice.Count);
        if (perRankDraws) return mixing.Apply(transforms.Train(own, rng), ownLabels, classes, rng); // the tests' control
        var x = transforms.Train(own, rng, (slice.Offset, slice.GlobalCount));
        var draw = mixing.Draw(rng, (int)x.shape[2], (int)x.shape[3]);
        if (draw == MixDraw.None) return (x, MixupCutmix.MixTargets(ownLabels, classes, mixing.Smoothing, draw.Lambda));
        var mirror = PartnerRows!.Value;
        var (partnerPixels, partnerLabels) = !sliced ? (pixels.narrow(0, mirror.Offset, mirror.Count), labels.narrow(0, mirror.Offset, mirror.Count))
            : mirror == slice ? (own, ownLabels)
            : partners is { } p && p.Rows == mirror ? (p.Pixels.to(device), p.Labels.to(device))
            : throw new ArgumentException($"fine-tuning rows {Describe(slice)} with Mixup/CutMix need their partners, rows {Describe(mirror)}, "
                + $"not {(partners is null ? "none" : Describe(partners.Rows))}", nameof(partners));
        var mirrored = transforms.Train(partnerPixels, NewGenerator(step), (mirror.Offset, slice.GlobalCount));
        return (MixupCutmix.MixImages(x, draw, mirrored),
                MixupCutmix.MixTargets(ownLabels, classes, mixing.Smoothing, draw.Lambda, partnerLabels));
    }

    private static string Describe(BatchSlice rows) => $"{rows.Offset}..{rows.Offset + rows.Count} of {rows.GlobalCount}";

    private Random NewGenerator(long step) => new(SeedSequence.Derive(seed, step, 3));
}
