namespace MoCoV3.Distributed;

/// <summary>An NCCL call that returned an error: the call, NCCL's error code and its text.</summary>
public sealed class NcclException(string message, int code) : Exception(message)
{
    /// <summary>NCCL's <c>ncclResult_t</c> (1 unhandled CUDA error, 2 system error, 3 internal error, 4 invalid argument, 5 invalid usage, 6 remote error).</summary>
    public int Code { get; } = code;
}
