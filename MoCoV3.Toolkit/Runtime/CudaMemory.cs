using System.Runtime.InteropServices;

namespace MoCoV3.Runtime;

/// <summary>
/// GPU memory in use, from the CUDA driver (<c>cuMemGetInfo</c> of the current context). TorchSharp 0.107 exposes none of
/// the caching allocator's statistics (<c>torch.cuda.max_memory_allocated</c> / <c>memory_reserved</c>), so this is the
/// nearest measure we can take: everything held on the device, i.e. the allocator's reserved memory plus the CUDA context
/// and library workspaces (cuBLAS, cuDNN). Sampled after synchronising, its maximum over a run is the peak we report.
/// </summary>
public static partial class CudaMemory
{
    /// <summary>Bytes in use on the current device (total − free), or null when the driver cannot be asked.</summary>
    public static long? UsedBytes()
    {
        try
        {
            return cuMemGetInfo_v2(out nuint free, out nuint total) == 0 ? (long)(total - free) : null;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return null;
        }
    }

    [LibraryImport("libcuda.so.1")]
    private static partial int cuMemGetInfo_v2(out nuint free, out nuint total);
}
