namespace MoCoV3.Distributed;

/// <summary>
/// <c>MPI_COMM_WORLD</c> of the MPI library chosen by <see cref="MpiLibraryLocator"/>. MPI is initialised once per process
/// (<c>MPI_THREAD_SERIALIZED</c>: calls may come from any thread, one at a time) and finalised once, by <see cref="Dispose"/>
/// or at process exit; it cannot be initialised again afterwards. Errors come back as <see cref="MpiException"/> instead of
/// aborting the job. Without a launcher, MPI gives a world of one rank.
/// </summary>
public sealed unsafe class MpiCommunicator : ICommunicator
{
    private static readonly Lock Gate = new();
    private static MpiCommunicator? world;
    private static bool finalized;

    private readonly MpiNative mpi;
    private readonly bool ownsInitialization;

    private MpiCommunicator(MpiNative mpi, int rank, int size, bool ownsInitialization)
    {
        this.mpi = mpi;
        Rank = rank;
        Size = size;
        this.ownsInitialization = ownsInitialization;
    }

    public int Rank { get; }
    public int Size { get; }
    public MpiFlavour Flavour => mpi.Flavour;
    public string Library => mpi.Library;
    public string Version => mpi.Version;
    public string Description => $"{mpi.Version} ({mpi.Library})";

    /// <summary>
    /// The world communicator, initialising MPI on the first call. <paramref name="library"/> names the MPI library
    /// (else <see cref="MpiLibraryLocator.EnvironmentVariable"/>, else the launcher's, else Open MPI's then MPICH's).
    /// </summary>
    /// <exception cref="InvalidOperationException">No MPI library loads, MPI was finalised already, or the library does not
    /// belong to the launcher that started this process.</exception>
    public static MpiCommunicator World(string? library = null)
    {
        lock (Gate)
        {
            if (world is not null) return world;
            if (finalized) throw new InvalidOperationException("MPI was finalised in this process and cannot be initialised again");
            var launch = LaunchEnvironment.FromProcess();
            MpiNative.LeaveSignalsToDotNet();   // before loading: UCX reads it when its library is loaded
            var mpi = MpiNative.Load(MpiLibraryLocator.Candidates(library, launch.Launcher));

            int initialized = 0, provided = 0, rank = 0, size = 0;
            mpi.Check(mpi.Initialized(&initialized), "MPI_Initialized");
            bool owns = initialized == 0;
            if (owns) mpi.Check(mpi.InitThread(null, null, MpiNative.ThreadSerialized, &provided), "MPI_Init_thread");
            var communicator = new MpiCommunicator(mpi, 0, 1, owns);
            try
            {
                if (owns && provided < MpiNative.ThreadSerialized)
                    throw new InvalidOperationException(
                        $"{communicator.Description} offers thread level {provided}; MPI_THREAD_SERIALIZED ({MpiNative.ThreadSerialized}) is needed");
                mpi.Check(mpi.CommSetErrhandler(mpi.CommWorld, mpi.ErrorsReturn), "MPI_Comm_set_errhandler");
                mpi.Check(mpi.CommRank(mpi.CommWorld, &rank), "MPI_Comm_rank");
                mpi.Check(mpi.CommSize(mpi.CommWorld, &size), "MPI_Comm_size");
                if (launch.Launcher is Launcher.OpenMpi or Launcher.Mpich && size != launch.WorldSize)
                    throw new InvalidOperationException(
                        $"the {(launch.Launcher == Launcher.OpenMpi ? "Open MPI" : "MPICH")} launcher started {launch.WorldSize} processes but {communicator.Description} sees a world of {size}: " +
                        $"the MPI library is not the launcher's (launch with the same MPI's launcher, e.g. mpirun.openmpi for {MpiLibraryLocator.OpenMpiLibrary} " +
                        $"and mpiexec.hydra for {MpiLibraryLocator.MpichLibrary}, or name the library with {MpiLibraryLocator.EnvironmentVariable})");
            }
            catch
            {
                communicator.Dispose();
                throw;
            }
            world = new MpiCommunicator(mpi, rank, size, owns);
            if (owns) AppDomain.CurrentDomain.ProcessExit += (_, _) => world?.Dispose();
            return world;
        }
    }

    public void AllReduceSum<T>(Span<T> buffer) where T : unmanaged
    {
        CollectiveArguments.CheckElement<T>(reduction: true);
        if (buffer.IsEmpty) return;
        lock (Gate)
        {
            fixed (T* data = buffer)
                mpi.Check(mpi.Allreduce((void*)mpi.InPlace, data, buffer.Length, Datatype<T>(), mpi.OpSum, mpi.CommWorld), "MPI_Allreduce");
        }
    }

    public void AllGather<T>(ReadOnlySpan<T> local, Span<T> all) where T : unmanaged
    {
        CollectiveArguments.CheckElement<T>(reduction: false);
        CollectiveArguments.CheckGather(local.Length, all.Length, Size);
        if (local.IsEmpty) return;
        lock (Gate)
        {
            fixed (T* send = local)
            fixed (T* receive = all)
                mpi.Check(mpi.Allgather(send, local.Length, Datatype<T>(), receive, local.Length, Datatype<T>(), mpi.CommWorld), "MPI_Allgather");
        }
    }

    public void Broadcast<T>(Span<T> buffer, int root) where T : unmanaged
    {
        CollectiveArguments.CheckElement<T>(reduction: false);
        CollectiveArguments.CheckRoot(root, Size);
        if (buffer.IsEmpty) return;
        lock (Gate)
        {
            fixed (T* data = buffer)
                mpi.Check(mpi.Bcast(data, buffer.Length, Datatype<T>(), root, mpi.CommWorld), "MPI_Bcast");
        }
    }

    public void Barrier()
    {
        lock (Gate) mpi.Check(mpi.Barrier(mpi.CommWorld), "MPI_Barrier");
    }

    /// <summary>Ends every rank of the job with <paramref name="code"/> (<c>MPI_Abort</c>): for a rank that cannot go on alone.</summary>
    public void Abort(int code)
    {
        _ = mpi.Abort(mpi.CommWorld, code);
    }

    /// <summary>Finalises MPI (once per process; only if this communicator initialised it).</summary>
    public void Dispose()
    {
        lock (Gate)
        {
            if (finalized || !ownsInitialization) return;
            int done = 0;
            if (mpi.Finalized(&done) == MpiNative.Success && done == 0) _ = mpi.Finalize();
            finalized = true;
            world = null;
        }
    }

    private nint Datatype<T>() =>
        typeof(T) == typeof(float) ? mpi.Float
        : typeof(T) == typeof(double) ? mpi.Double
        : typeof(T) == typeof(int) ? mpi.Int32
        : typeof(T) == typeof(long) ? mpi.Int64
        : mpi.Byte;
}
