using System.Runtime.InteropServices;
using static TorchSharp.torch;

namespace MoCoV3.Optim;

/// <summary>
/// Where a tensor's elements are, on any device: its storage's base address and its offset in that storage. TorchSharp
/// exposes the offset but not the storage address of a CUDA tensor, so this asks LibTorchSharp (already loaded by
/// TorchSharp, found the same way) for <c>THSStorage_data_ptr</c>.
/// </summary>
public static class TensorMemory
{
    private static readonly unsafe delegate* unmanaged<IntPtr, IntPtr> storageDataPointer = Resolve();

    private static unsafe delegate* unmanaged<IntPtr, IntPtr> Resolve()
    {
        var library = NativeLibrary.Load("LibTorchSharp", typeof(TorchSharp.torch).Assembly, null);
        return (delegate* unmanaged<IntPtr, IntPtr>)NativeLibrary.GetExport(library, "THSStorage_data_ptr");
    }

    /// <summary>Base address of <paramref name="tensor"/>'s storage (device memory for a CUDA tensor).</summary>
    public static unsafe IntPtr StorageAddress(Tensor tensor)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        return storageDataPointer(tensor.Handle);
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
