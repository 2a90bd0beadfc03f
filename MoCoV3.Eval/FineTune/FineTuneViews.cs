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
/// Which rows a rank must read (<see cref="NeedsWholeBatch"/>): with Mixup/CutMix on, its own and their mirrored partners'
/// — at 2 ranks the whole global batch, so the loader reads whole batches then; with mixing off (or the per-rank control)
/// its own rows alone, which the loader then reads by themselves (<see cref="ImageBatch.Rows"/> = the slice).
/// </remarks>
internal sealed class FineTuneViews(ImageTransforms transforms, MixupCutmix mixing, BatchSlice slice, long seed, int classes, Device device, bool perRankDraws)
{
    /// <summary>Whether <see cref="For"/> needs other ranks' rows of the global batch (the Mixup/CutMix partners), not only this rank's.</summary>
    public bool NeedsWholeBatch => !slice.IsWhole && !perRankDraws && mixing.Enabled;

    /// <param name="batch">The whole global batch, or this rank's slice of it alone when <see cref="NeedsWholeBatch"/> is false.</param>
    public (Tensor Images, Tensor Targets) For(ImageBatch batch, long step)
    {
        var rng = NewGenerator(step);
        var pixels = batch.Pixels.to(device);
        var labels = batch.Labels.to(device);
        if (slice.IsWhole) return mixing.Apply(transforms.Train(pixels, rng), labels, classes, rng);
        bool sliced = !batch.Rows.IsWhole; // the loader read this rank's rows alone
        if (sliced && (batch.Rows != slice || NeedsWholeBatch))
            throw new ArgumentException($"fine-tuning rows {slice.Offset}..{slice.Offset + slice.Count} of {slice.GlobalCount} got a batch of rows "
                + $"{batch.Rows.Offset}..{batch.Rows.Offset + batch.Rows.Count}{(NeedsWholeBatch ? " (Mixup/CutMix need the whole batch)" : "")}", nameof(batch));
        var own = sliced ? pixels : pixels.narrow(0, slice.Offset, slice.Count);
        var ownLabels = sliced ? labels : labels.narrow(0, slice.Offset, slice.Count);
        if (perRankDraws) return mixing.Apply(transforms.Train(own, rng), ownLabels, classes, rng); // the tests' control
        var x = transforms.Train(own, rng, (slice.Offset, slice.GlobalCount));
        var draw = mixing.Draw(rng, (int)x.shape[2], (int)x.shape[3]);
        if (draw == MixDraw.None) return (x, MixupCutmix.MixTargets(ownLabels, classes, mixing.Smoothing, draw.Lambda));
        int mirror = slice.GlobalCount - slice.Offset - slice.Count;
        var mirrored = transforms.Train(pixels.narrow(0, mirror, slice.Count), NewGenerator(step), (mirror, slice.GlobalCount));
        return (MixupCutmix.MixImages(x, draw, mirrored),
                MixupCutmix.MixTargets(ownLabels, classes, mixing.Smoothing, draw.Lambda, labels.narrow(0, mirror, slice.Count)));
    }

    private Random NewGenerator(long step) => new(SeedSequence.Derive(seed, step, 3));
}
