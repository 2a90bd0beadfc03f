namespace MoCoV3.Distributed;

/// <summary>
/// The launch environment of this process and the communicator over its ranks: one process without a launcher, MPI's
/// world under <c>mpirun</c> / <c>mpiexec</c>. A <c>torchrun</c>-style launch is detected and refused for now: its
/// collectives would be NCCL's, which are not wired yet.
/// </summary>
public sealed class DistributedContext : IDisposable
{
    private DistributedContext(LaunchEnvironment launch, ICommunicator communicator)
    {
        Launch = launch;
        Communicator = communicator;
    }

    public LaunchEnvironment Launch { get; }
    public ICommunicator Communicator { get; }
    public int Rank => Communicator.Rank;
    public int Size => Communicator.Size;

    /// <summary>
    /// The context of this process. <paramref name="mpiLibrary"/> names the MPI library (see <see cref="MpiLibraryLocator"/>);
    /// <paramref name="rankTimeoutSeconds"/> is <c>--rank-timeout</c> (null: <see cref="RankTimeout"/>'s environment variable or default).
    /// </summary>
    /// <exception cref="InvalidOperationException">The launch environment is invalid or unsupported, or MPI cannot start.</exception>
    /// <exception cref="ArgumentException">The rank timeout is negative or not a number.</exception>
    public static DistributedContext Open(string? mpiLibrary = null, double? rankTimeoutSeconds = null)
    {
        var timeout = RankTimeout.Resolve(rankTimeoutSeconds);
        var launch = LaunchEnvironment.FromProcess();
        return launch.Launcher switch
        {
            Launcher.None => new DistributedContext(launch, new SingleProcessCommunicator()),
            Launcher.OpenMpi or Launcher.Mpich => new DistributedContext(launch, WithTimeout(MpiCommunicator.World(mpiLibrary), timeout)),
            _ => throw new InvalidOperationException(
                $"a torchrun-style launcher started this process (RANK={launch.Rank}, WORLD_SIZE={launch.WorldSize}, LOCAL_RANK={launch.LocalRank}); " +
                "its collectives need NCCL, which is not wired yet: launch the ranks with mpirun (Open MPI) or mpiexec (MPICH) instead"),
        };
    }

    /// <summary>
    /// Ends every rank of the job with exit code <paramref name="code"/> (<c>MPI_Abort</c>): for a rank that fails on its own,
    /// whose peers would otherwise wait for it in their next collective. Returns only in a single-process context.
    /// </summary>
    public void Abort(int code)
    {
        if (Communicator is MpiCommunicator mpi) mpi.Abort(code);
    }

    public void Dispose() => Communicator.Dispose();

    private static MpiCommunicator WithTimeout(MpiCommunicator world, TimeSpan? timeout)
    {
        world.Timeout = timeout;
        return world;
    }
}
