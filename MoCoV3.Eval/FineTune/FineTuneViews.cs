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
internal sealed class FineTuneViews(ImageTransforms transforms, MixupCutmix mixing, BatchSlice slice, long seed, int classes, Device device, bool perRankDraws)
{
    public (Tensor Images, Tensor Targets) For(ImageBatch batch, long step)
    {
        var rng = NewGenerator(step);
        var pixels = batch.Pixels.to(device);
        var labels = batch.Labels.to(device);
        if (slice.IsWhole) return mixing.Apply(transforms.Train(pixels, rng), labels, classes, rng);
        var own = pixels.narrow(0, slice.Offset, slice.Count);
        var ownLabels = labels.narrow(0, slice.Offset, slice.Count);
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
