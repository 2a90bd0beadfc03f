using System.Runtime.InteropServices;

namespace MoCoV3.Distributed;

/// <summary>
/// The few CUDA runtime calls NCCL needs that TorchSharp does not offer, from the CUDA runtime that the CUDA libtorch loaded
/// (found by soname: the loader returns the copy already in the process): <c>cudaSetDevice</c> (NCCL binds a communicator
/// to the calling thread's current device at <c>ncclCommInitRank</c>) and the events <see cref="NcclWatchdog"/> marks
/// enqueued collectives with. Values from the CUDA runtime API (driver_types.h): <c>cudaSuccess</c> 0,
/// <c>cudaErrorNotReady</c> 600 (what <c>cudaEventQuery</c> answers while captured work is incomplete),
/// <c>cudaEventDisableTiming</c> 0x02; <c>cudaEvent_t</c> and <c>cudaStream_t</c> are pointers, <c>cudaError_t</c> a C <c>int</c>.
/// </summary>
internal static unsafe class CudaRuntime
{
    /// <summary><c>cudaSuccess</c>.</summary>
    public const int Success = 0;
    /// <summary><c>cudaErrorNotReady</c>: the work an event captured is not complete yet (not an error).</summary>
    public const int NotReady = 600;
    /// <summary><c>cudaEventDisableTiming</c>: an event that records no time, the cheapest to query.</summary>
    public const uint EventDisableTiming = 0x02;

    private static readonly string[] Sonames = ["libcudart.so.13", "libcudart.so.12", "libcudart.so.11.0", "libcudart.so"];
    private static readonly Lock Gate = new();
    private static nint library;
    private static string? loaded;
    private static delegate* unmanaged<int, int> setDevice;
    private static delegate* unmanaged<nint*, uint, int> eventCreateWithFlags;
    private static delegate* unmanaged<nint, nint, int> eventRecord;
    private static delegate* unmanaged<nint, int> eventQuery;
    private static delegate* unmanaged<nint, int> eventDestroy;

    /// <summary>Makes <paramref name="device"/> the calling thread's current CUDA device.</summary>
    /// <exception cref="InvalidOperationException">No CUDA runtime is loaded, or it refuses the device.</exception>
    public static void SetDevice(int device)
    {
        Bind($"select cuda:{device} for NCCL");
        int error = setDevice(device);
        if (error != Success) throw new InvalidOperationException($"cudaSetDevice({device}) failed with cudaError_t {error}");
    }

    /// <summary>A new event without timing on the calling thread's current device (<c>cudaEventCreateWithFlags</c>).</summary>
    /// <exception cref="InvalidOperationException">No CUDA runtime, or CUDA refuses.</exception>
    public static nint CreateEvent()
    {
        Bind("mark NCCL collectives for the watchdog");
        nint made;
        int error = eventCreateWithFlags(&made, EventDisableTiming);
        if (error != Success) throw new InvalidOperationException($"cudaEventCreateWithFlags failed with cudaError_t {error}");
        return made;
    }

    /// <summary>Captures in <paramref name="cudaEvent"/> the work enqueued so far on <paramref name="stream"/> (0: the legacy default stream).</summary>
    public static void RecordEvent(nint cudaEvent, nint stream)
    {
        int error = eventRecord(cudaEvent, stream);
        if (error != Success) throw new InvalidOperationException($"cudaEventRecord failed with cudaError_t {error}");
    }

    /// <summary><c>cudaEventQuery</c>: <see cref="Success"/> once the captured work is complete, <see cref="NotReady"/> before, else a CUDA error.</summary>
    public static int QueryEvent(nint cudaEvent) => eventQuery(cudaEvent);

    /// <summary><c>cudaEventDestroy</c> (an incomplete event's resources are freed when its work completes).</summary>
    public static void DestroyEvent(nint cudaEvent) => _ = eventDestroy(cudaEvent);

    private static void Bind(string purpose)
    {
        if (setDevice != null) return;
        lock (Gate)
        {
            if (setDevice != null) return;
            foreach (string name in Sonames)
                if (NativeLibrary.TryLoad(name, out nint handle) && NativeLibrary.TryGetExport(handle, "cudaSetDevice", out _))
                {
                    (library, loaded) = (handle, name);
                    break;
                }
            if (library == 0)
                throw new InvalidOperationException($"no CUDA runtime ({string.Join(", ", Sonames)}) could be loaded to {purpose}");
            nint Export(string function) => NativeLibrary.TryGetExport(library, function, out nint f)
                ? f
                : throw new InvalidOperationException($"the CUDA runtime {loaded} has no {function}");
            eventCreateWithFlags = (delegate* unmanaged<nint*, uint, int>)Export("cudaEventCreateWithFlags");
            eventRecord = (delegate* unmanaged<nint, nint, int>)Export("cudaEventRecord");
            eventQuery = (delegate* unmanaged<nint, int>)Export("cudaEventQuery");
            eventDestroy = (delegate* unmanaged<nint, int>)Export("cudaEventDestroy");
            setDevice = (delegate* unmanaged<int, int>)Export("cudaSetDevice");   // last: it marks the whole set as bound
        }
    }
}
