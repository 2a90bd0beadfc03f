namespace MoCoV3.Distributed;

/// <summary>
/// <see cref="IWatchedStream"/> over a real NCCL communicator whose collectives are enqueued on CUDA's legacy default stream
/// (stream 0, as <see cref="NcclCommunicator"/> does): CUDA events without timing as markers, <c>ncclCommGetAsyncError</c>,
/// <c>ncclCommAbort</c>.
/// </summary>
internal sealed unsafe class NcclWatchedStream(NcclNative nccl, nint comm, int device) : IWatchedStream
{
    /// <summary>The stream the collectives use: the legacy default stream.</summary>
    private const nint Stream = 0;

    private int aborted;

    public void Attach() => CudaRuntime.SetDevice(device);

    public nint CreateMarker() => CudaRuntime.CreateEvent();

    public void Record(nint marker) => CudaRuntime.RecordEvent(marker, Stream);

    public int Query(nint marker) => CudaRuntime.QueryEvent(marker);

    public void DestroyMarker(nint marker) => CudaRuntime.DestroyEvent(marker);

    public int AsyncError()
    {
        if (Volatile.Read(ref aborted) != 0) return 0;
        int result = 0;
        int call = nccl.CommGetAsyncError(comm, &result);
        return call != 0 ? call : result;
    }

    public string ErrorText(int result) => nccl.ErrorText(result);

    public void Abort()
    {
        if (Interlocked.Exchange(ref aborted, 1) == 0) _ = nccl.CommAbort(comm);
    }
}
