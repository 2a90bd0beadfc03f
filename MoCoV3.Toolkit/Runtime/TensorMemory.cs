using System.Runtime.InteropServices;
using static TorchSharp.torch;

namespace MoCoV3.Runtime;

/// <summary>
/// Where a tensor's elements are, on any device: the address of its first element (libtorch's <c>data_ptr()</c>, for NCCL),
/// its storage's base address and its offset in that storage. TorchSharp exposes the offset and a CPU tensor's bytes, but
/// no address of a CUDA tensor, so this asks LibTorchSharp (already loaded by TorchSharp, found the same way) for
/// <c>THSTensor_data</c> and <c>THSStorage_data_ptr</c>.
/// </summary>
public static class TensorMemory
{
    private static readonly unsafe delegate* unmanaged<IntPtr, IntPtr> tensorDataPointer = Resolve("THSTensor_data");

    private static readonly unsafe delegate* unmanaged<IntPtr, IntPtr> storageDataPointer = Resolve("THSStorage_data_ptr");

    private static unsafe delegate* unmanaged<IntPtr, IntPtr> Resolve(string export)
    {
        var library = NativeLibrary.Load("LibTorchSharp", typeof(TorchSharp.torch).Assembly, null);
        return (delegate* unmanaged<IntPtr, IntPtr>)NativeLibrary.GetExport(library, export);
    }

    /// <summary>
    /// The address of <paramref name="tensor"/>'s first element (storage offset included); the caller keeps the tensor
    /// alive while the address is used.
    /// </summary>
    public static unsafe IntPtr Address(Tensor tensor)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        IntPtr address = tensorDataPointer(tensor.Handle);
        GC.KeepAlive(tensor);
        return address;
    }

    /// <summary>Base address of <paramref name="tensor"/>'s storage (device memory for a CUDA tensor).</summary>
    public static unsafe IntPtr StorageAddress(Tensor tensor)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        IntPtr address = storageDataPointer(tensor.Handle);
        GC.KeepAlive(tensor);
        return address;
    }

    /// <summary>
    /// Whether <paramref name="a"/> is exactly the elements of <paramref name="b"/>: same storage, offset, element
    /// count and dtype, both contiguous (so the same memory, in the same order).
    /// </summary>
    public static bool SameMemory(Tensor a, Tensor b)
    {
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(b);
        return a.dtype == b.dtype && a.device_type == b.device_type && a.numel() == b.numel() && a.is_contiguous() && b.is_contiguous()
            && a.storage_offset() == b.storage_offset() && StorageAddress(a) == StorageAddress(b);
    }
}
