namespace MoCoV3.Distributed;

/// <summary>
/// The collectives data-parallel training needs, over the processes of one job (ranks 0 … <see cref="Size"/> − 1). Every
/// rank must make the same calls in the same order with buffers of the same length; element types are <see cref="float"/>,
/// <see cref="double"/>, <see cref="int"/>, <see cref="long"/> or <see cref="byte"/>. Calls are made from one thread at a time.
/// Tensors go through <see cref="CommunicatorTensors"/>.
/// </summary>
public interface ICommunicator : IDisposable
{
    int Rank { get; }
    int Size { get; }

    /// <summary>What carries the collectives, for logs: e.g. "Open MPI v4.1.4 (libmpi.so.40)" or "single process".</summary>
    string Description { get; }

    /// <summary>Replaces <paramref name="buffer"/> on every rank by the element-wise sum of every rank's buffer.</summary>
    void AllReduceSum<T>(Span<T> buffer) where T : unmanaged;

    /// <summary>Writes every rank's <paramref name="local"/> into <paramref name="all"/>, rank r's at [r·n, (r+1)·n), n = local.Length.</summary>
    void AllGather<T>(ReadOnlySpan<T> local, Span<T> all) where T : unmanaged;

    /// <summary>Replaces <paramref name="buffer"/> on every rank by the one of rank <paramref name="root"/>.</summary>
    void Broadcast<T>(Span<T> buffer, int root) where T : unmanaged;

    /// <summary>Returns once every rank has called it.</summary>
    void Barrier();

    /// <summary>
    /// Wall time this rank has spent in collectives so far (communication and waiting for the other ranks), where the
    /// communicator can tell: null where collectives only enqueue work (NCCL) or there is nothing to wait for.
    /// </summary>
    TimeSpan? TimeInCollectives => null;

    /// <summary>Names what the ranks do now (e.g. "step 12"), for the error of a collective that fails or times out.</summary>
    void SetActivity(string activity)
    {
    }
}
