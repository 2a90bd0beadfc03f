namespace MoCoV3.Distributed;

/// <summary>
/// What <see cref="NcclWatchdog"/> watches, behind an interface so that its decisions can be tested without a GPU: markers
/// recorded after the work enqueued on the stream the collectives use (CUDA events), the communicator's asynchronous error,
/// and its abort. <see cref="NcclWatchedStream"/> is NCCL's and CUDA's.
/// </summary>
public interface IWatchedStream
{
    /// <summary>Called once on the watchdog's thread before it polls (CUDA: selects the communicator's device).</summary>
    void Attach();

    /// <summary>A new marker (<c>cudaEventCreateWithFlags</c>); the watchdog reuses markers and destroys them at the end.</summary>
    nint CreateMarker();

    /// <summary>Makes <paramref name="marker"/> capture the work enqueued so far (<c>cudaEventRecord</c> on the collectives' stream).</summary>
    void Record(nint marker);

    /// <summary>
    /// <c>cudaEventQuery</c>: 0 (<c>cudaSuccess</c>) when the captured work is complete, 600 (<c>cudaErrorNotReady</c>) while
    /// it is not, any other value a CUDA error.
    /// </summary>
    int Query(nint marker);

    /// <summary>Frees <paramref name="marker"/> (<c>cudaEventDestroy</c>).</summary>
    void DestroyMarker(nint marker);

    /// <summary><c>ncclCommGetAsyncError</c>: the communicator's <c>ncclResult_t</c> (0 none, 7 still in progress, else an error).</summary>
    int AsyncError();

    /// <summary>NCCL's text for <paramref name="result"/> (<c>ncclGetErrorString</c>).</summary>
    string ErrorText(int result);

    /// <summary><c>ncclCommAbort</c>: ends the communicator, so that kernels spinning on a lost peer stop.</summary>
    void Abort();
}
