using System.Runtime.InteropServices;

namespace MoCoV3.Distributed;

/// <summary>
/// <c>cudaSetDevice</c> from the CUDA runtime that the CUDA libtorch loaded (found by soname: the loader returns the copy
/// already in the process). NCCL binds a communicator to the calling thread's current device at <c>ncclCommInitRank</c>;
/// TorchSharp has no call that sets it.
/// </summary>
internal static unsafe class CudaRuntime
{
    private static readonly string[] Sonames = ["libcudart.so.13", "libcudart.so.12", "libcudart.so.11.0", "libcudart.so"];
    private static delegate* unmanaged<int, int> setDevice;

    /// <summary>Makes <paramref name="device"/> the calling thread's current CUDA device.</summary>
    /// <exception cref="InvalidOperationException">No CUDA runtime is loaded, or it refuses the device.</exception>
    public static void SetDevice(int device)
    {
        if (setDevice == null)
        {
            foreach (string name in Sonames)
                if (NativeLibrary.TryLoad(name, out nint handle) && NativeLibrary.TryGetExport(handle, "cudaSetDevice", out nint f))
                {
                    setDevice = (delegate* unmanaged<int, int>)f;
                    break;
                }
            if (setDevice == null)
                throw new InvalidOperationException($"no CUDA runtime ({string.Join(", ", Sonames)}) could be loaded to select cuda:{device} for NCCL");
        }
        int error = setDevice(device);
        if (error != 0) throw new InvalidOperationException($"cudaSetDevice({device}) failed with cudaError_t {error}");
    }
}
