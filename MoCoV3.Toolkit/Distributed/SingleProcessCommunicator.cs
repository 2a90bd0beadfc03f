namespace MoCoV3.Distributed;

/// <summary>The world of one process, without MPI: a sum over one rank is the buffer itself.</summary>
public sealed class SingleProcessCommunicator : ICommunicator
{
    public int Rank => 0;
    public int Size => 1;
    public string Description => "single process";

    public void AllReduceSum<T>(Span<T> buffer) where T : unmanaged => CollectiveArguments.CheckElement<T>(reduction: true);

    public void AllGather<T>(ReadOnlySpan<T> local, Span<T> all) where T : unmanaged
    {
        CollectiveArguments.CheckElement<T>(reduction: false);
        CollectiveArguments.CheckGather(local.Length, all.Length, Size);
        local.CopyTo(all);
    }

    public void Broadcast<T>(Span<T> buffer, int root) where T : unmanaged
    {
        CollectiveArguments.CheckElement<T>(reduction: false);
        CollectiveArguments.CheckRoot(root, Size);
    }

    public void Barrier()
    {
    }

    public void Dispose()
    {
    }
}
