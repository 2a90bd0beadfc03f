namespace MoCoV3.Distributed;

/// <summary>
/// The launch environment of this process and the communicator over its ranks: one process without a launcher, MPI's
/// world under <c>mpirun</c> / <c>mpiexec</c>; with <c>--device cuda</c>, NCCL for tensors (<see cref="NcclCommunicator"/>),
/// over MPI under <c>mpirun</c> and alone under a <c>torchrun</c>-style launcher (which is refused for CPU training).
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
    /// <param name="compute">The run's device and libtorch folder: a CUDA device under a launcher gets NCCL (null: CPU).</param>
    public static DistributedContext Open(string? mpiLibrary = null, double? rankTimeoutSeconds = null, Runtime.ComputeOptions? compute = null)
    {
        var timeout = RankTimeout.Resolve(rankTimeoutSeconds);
        var launch = LaunchEnvironment.FromProcess();
        string device = NcclBootstrap.RankDevice(compute?.Device ?? "cpu", launch);
        return Choose(launch, device) switch
        {
            Engine.SingleProcess => new DistributedContext(launch, new SingleProcessCommunicator()),
            Engine.Mpi => new DistributedContext(launch, WithTimeout(MpiCommunicator.World(mpiLibrary), timeout)),
            Engine.NcclOverMpi => new DistributedContext(launch,
                new NcclCommunicator(launch, NcclBootstrap.CudaIndex(device), WithTimeout(MpiCommunicator.World(mpiLibrary), timeout), libtorchDir: compute?.LibTorch)
                {
                    Timeout = timeout,
                }),
            _ => new DistributedContext(launch, new NcclCommunicator(launch, NcclBootstrap.CudaIndex(device), control: null, libtorchDir: compute?.LibTorch)
            {
                Timeout = timeout,
            }),
        };
    }

    /// <summary>What carries the collectives of a process that <paramref name="launch"/> started on <paramref name="device"/>.</summary>
    /// <exception cref="InvalidOperationException">A torchrun-style launch on the CPU (its collectives would need MPI).</exception>
    public static Engine Choose(LaunchEnvironment launch, string device)
    {
        bool cuda = device.StartsWith("cuda", StringComparison.Ordinal);
        return launch.Launcher switch
        {
            Launcher.None => Engine.SingleProcess,
            Launcher.OpenMpi or Launcher.Mpich => cuda ? Engine.NcclOverMpi : Engine.Mpi,
            _ when cuda => Engine.Nccl,
            _ => throw new InvalidOperationException(
                $"a torchrun-style launcher started this process (RANK={launch.Rank}, WORLD_SIZE={launch.WorldSize}, LOCAL_RANK={launch.LocalRank}) " +
                $"on {device}: without MPI the collectives are NCCL's, which take CUDA tensors: use --device cuda, or launch CPU ranks with mpirun (Open MPI) or mpiexec (MPICH)"),
        };
    }

    /// <summary>The device this rank trains on: <c>cuda</c> under a launcher is <c>cuda:LOCAL_RANK</c> (see <see cref="NcclBootstrap.RankDevice"/>).</summary>
    public string RankDevice(string device) => NcclBootstrap.RankDevice(device, Launch);

    /// <summary>
    /// Ends every rank of the job with exit code <paramref name="code"/> (<c>MPI_Abort</c>): for a rank that fails on its own,
    /// whose peers would otherwise wait for it in their next collective. Returns only in a single-process context.
    /// </summary>
    public void Abort(int code)
    {
        if (Communicator is NcclCommunicator nccl)
        {
            nccl.Abort();
            if (nccl.Control is MpiCommunicator control) control.Abort(code);
            Environment.Exit(code);   // torchrun-style: the launcher ends the other ranks when one exits with an error
        }
        if (Communicator is MpiCommunicator mpi) mpi.Abort(code);
    }

    public void Dispose() => Communicator.Dispose();

    private static MpiCommunicator WithTimeout(MpiCommunicator world, TimeSpan? timeout)
    {
        world.Timeout = timeout;
        return world;
    }
}
