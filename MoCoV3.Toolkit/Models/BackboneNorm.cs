using MoCoV3.Distributed;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MoCoV3.Models;

/// <summary>
/// A ResNet's BatchNorm2d (or downsample) in one process, as the module computes it, or over every rank of a data-parallel
/// run (<see cref="SyncBatchNorm"/>), as <c>convert_sync_batchnorm</c> makes the official backbone's.
/// </summary>
internal static class BackboneNorm
{
    public static Tensor Forward(BatchNorm2d bn, Tensor x, ICommunicator? ranks) =>
        ranks is null ? bn.forward(x) : SyncBatchNorm.Forward(bn, x, ranks);

    public static Tensor Forward(Sequential downsample, Tensor x, ICommunicator? ranks) =>
        ranks is null ? Autocast.Forward(downsample, x) : SyncBatchNorm.ForwardSequential(downsample, x, ranks);
}
