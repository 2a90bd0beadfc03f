using MoCoV3.Distributed;
using TorchSharp;
using static TorchSharp.torch;

namespace MoCoV3.Eval.Classification;

/// <summary>
/// What data-parallel <c>lincls</c> and <c>finetune</c> share, as data-parallel pretraining does it: <c>--batch</c> is the
/// global batch, split evenly over the ranks (<see cref="BatchSlice"/>); the collectives run on CPU tensors over MPI.
/// </summary>
internal static class ClassifierRanks
{
    /// <summary>Refuses a global batch that does not split over the ranks, before anything is loaded.</summary>
    /// <exception cref="ArgumentException">The batch does not split evenly over the ranks.</exception>
    public static void CheckBatch(ICommunicator ranks, int batch)
    {
        if (ranks.Size > 1) BatchSlice.Of(batch, ranks.Rank, ranks.Size);
    }

    /// <summary>Refuses a device the collectives cannot take (CUDA needs NCCL).</summary>
    public static void CheckDevice(ICommunicator ranks, Device device, string command)
    {
        if (ranks.Size > 1 && !ranks.Takes(device))
            throw new NotSupportedException($"data-parallel {command} over {ranks.Description} takes CPU tensors; --device {device} needs NCCL (DistributedContext.Open with that device)");
    }

    /// <summary>Σ over the ranks of <paramref name="value"/> (the value itself for one process).</summary>
    public static double Sum(ICommunicator ranks, double value)
    {
        if (ranks.Size == 1) return value;
        double[] sum = [value];
        ranks.AllReduceSum<double>(sum);
        return sum[0];
    }
}
