using System.Runtime.InteropServices;
using static TorchSharp.torch;

namespace MoCoV3.Distributed;

/// <summary>The native address of a tensor's first element (libtorch's <c>data_ptr()</c>, storage offset included), for NCCL.</summary>
internal static partial class TensorMemory
{
    [LibraryImport("LibTorchSharp")]
    private static partial nint THSTensor_data(nint handle);

    /// <summary>The address of <paramref name="tensor"/>'s data; the caller keeps the tensor alive while the address is used.</summary>
    public static nint Address(Tensor tensor)
    {
        nint address = THSTensor_data(tensor.Handle);
        GC.KeepAlive(tensor);
        return address;
    }
}
