using System.Runtime.InteropServices;
using TorchSharp;
using static TorchSharp.torch;

namespace MoCoV3.Distributed;

/// <summary>
/// Collectives on CPU tensors, without copies: the communicator reads and writes the tensor's own memory (a contiguous
/// tensor, views of a larger buffer included). Autograd does not see these writes; a gathered tensor has no gradient, as
/// keys gathered for the MoCo loss have none. CUDA tensors go to NCCL (<see cref="NcclCommunicator"/>), in place as well.
/// </summary>
public static class CommunicatorTensors
{
    /// <summary>Replaces <paramref name="tensor"/> on every rank by the element-wise sum over ranks (float32, float64, int32, int64).</summary>
    public static void AllReduceSum(this ICommunicator communicator, Tensor tensor)
    {
        if (communicator is NcclCommunicator nccl && tensor.device_type == DeviceType.CUDA)
        {
            nccl.AllReduce(tensor);
            return;
        }
        var data = Memory(tensor, "all-reduce");
        switch (tensor.dtype)
        {
            case ScalarType.Float32: communicator.AllReduceSum(MemoryMarshal.Cast<byte, float>(data)); break;
            case ScalarType.Float64: communicator.AllReduceSum(MemoryMarshal.Cast<byte, double>(data)); break;
            case ScalarType.Int32: communicator.AllReduceSum(MemoryMarshal.Cast<byte, int>(data)); break;
            case ScalarType.Int64: communicator.AllReduceSum(MemoryMarshal.Cast<byte, long>(data)); break;
            default: throw new ArgumentException($"all-reduce sums float32, float64, int32 or int64 tensors, not {tensor.dtype}");
        }
        GC.KeepAlive(tensor);
    }

    /// <summary>Every rank's <paramref name="local"/> (same shape on every rank) stacked along dimension 0, in rank order.</summary>
    public static Tensor AllGather(this ICommunicator communicator, Tensor local)
    {
        if (local.dim() == 0) throw new ArgumentException("all-gather needs a tensor of at least one dimension (rows are stacked along dimension 0)");
        if (communicator is NcclCommunicator nccl && local.device_type == DeviceType.CUDA) return nccl.AllGather(local);
        var send = Memory(local, "all-gather");
        long[] shape = local.shape.ToArray();
        shape[0] *= communicator.Size;
        var all = empty(shape, local.dtype, local.device);
        try
        {
            communicator.AllGather<byte>(send, Memory(all, "all-gather"));
        }
        catch
        {
            all.Dispose();
            throw;
        }
        GC.KeepAlive(local);
        return all;
    }

    /// <summary>Replaces <paramref name="tensor"/> on every rank by the one of rank <paramref name="root"/> (any dtype).</summary>
    public static void Broadcast(this ICommunicator communicator, Tensor tensor, int root)
    {
        if (communicator is NcclCommunicator nccl && tensor.device_type == DeviceType.CUDA)
        {
            nccl.Broadcast(tensor, root);
            return;
        }
        communicator.Broadcast(Memory(tensor, "broadcast"), root);
        GC.KeepAlive(tensor);
    }

    /// <summary>Whether <paramref name="communicator"/> takes tensors on <paramref name="device"/>: CPU always, CUDA over NCCL.</summary>
    public static bool Takes(this ICommunicator communicator, Device device) =>
        device.type == DeviceType.CPU || (communicator is NcclCommunicator && device.type == DeviceType.CUDA);

    private static Span<byte> Memory(Tensor tensor, string collective)
    {
        if (tensor.device_type != DeviceType.CPU)
            throw new NotSupportedException($"{collective} of a {tensor.device_type} tensor: MPI collectives take CPU tensors (CUDA tensors need NCCL: --device cuda under mpirun or a torchrun-style launcher)");
        if (!tensor.is_contiguous())
            throw new ArgumentException($"{collective} needs a contiguous tensor (shape [{string.Join(", ", tensor.shape)}] is a strided view): call .contiguous() first");
        return tensor.bytes;
    }
}
