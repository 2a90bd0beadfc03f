using MoCoV3.Augment;

namespace MoCoV3.Data;

/// <summary>
/// How <see cref="PrefetchLoader"/> cuts two views of every image on its threads (<see cref="IViewDataset"/>): the
/// RandomResizedCrop and flip of each view, the run's seed that, with the step and the image's dataset index, fixes them,
/// and whether the JPEG decoder may shrink while decoding (by k/8) when both crops still measure
/// <see cref="ViewCutter.DctMargin"/> times the output size on the smaller decode (large photos; not ~500 px ones at 224).
/// </summary>
public sealed record ViewCropping(RandomResizedCrop Crop, long Seed, bool DctScaling = true);
