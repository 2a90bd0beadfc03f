using System.Diagnostics;

namespace MoCoV3.Distributed;

/// <summary>
/// <c>MPI_COMM_WORLD</c> of the MPI library chosen by <see cref="MpiLibraryLocator"/>. MPI is initialised once per process
/// (<c>MPI_THREAD_SERIALIZED</c>: calls may come from any thread, one at a time) and finalised once, by <see cref="Dispose"/>
/// or at process exit; it cannot be initialised again afterwards. Errors come back as <see cref="MpiException"/> instead of
/// aborting the job, except a collective that waits longer than <see cref="Timeout"/>: that ends the job with an error naming
/// the ranks that did not answer. Collectives are MPI's nonblocking ones, polled to completion. Without a launcher, MPI
/// gives a world of one rank.
/// </summary>
public sealed unsafe class MpiCommunicator : ICommunicator
{
    private static readonly Lock Gate = new();
    private static MpiCommunicator? world;
    private static bool finalized;

    /// <summary>How long a collective waits before it answers roll calls (<see cref="RollCall"/>).</summary>
    private static readonly TimeSpan AnswerAfter = TimeSpan.FromMilliseconds(50);

    private readonly MpiNative mpi;
    private readonly bool ownsInitialization;
    private readonly RollCall rollCall;
    private long collectives;          // collectives this rank has started
    private long begun, inCollectives; // Stopwatch ticks: the current collective's start, the total spent in collectives
    private string activity = "starting";

    private MpiCommunicator(MpiNative mpi, int rank, int size, bool ownsInitialization)
    {
        this.mpi = mpi;
        Rank = rank;
        Size = size;
        this.ownsInitialization = ownsInitialization;
        rollCall = new RollCall(mpi, rank, size);
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
            var timeout = RankTimeout.Resolve(null);
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
            world = new MpiCommunicator(mpi, rank, size, owns) { Timeout = timeout };
            if (owns) AppDomain.CurrentDomain.ProcessExit += (_, _) => world?.Dispose();
            return world;
        }
    }

    /// <summary>
    /// How long one collective may wait for the other ranks (null: forever; from <see cref="RankTimeout"/> at start). When a
    /// collective waits longer, this rank asks the others who is still there (<see cref="RollCall"/>), writes an error naming
    /// itself, the collective, <see cref="SetActivity">the activity</see>, how long it waited and the ranks that did not
    /// answer, and ends the job (<c>MPI_Abort</c>, exit code <see cref="RankTimeout.ExitCode"/>). It does not throw: collectives
    /// also run inside autograd's backward pass, where an exception would not reach the caller.
    /// </summary>
    public TimeSpan? Timeout { get; set; }

    /// <summary>
    /// Wall time this rank has spent inside collectives since it opened the world: moving the data, and waiting for ranks
    /// that reach the collective later (the whole communication cost of a step that does not overlap it with work).
    /// </summary>
    public TimeSpan? TimeInCollectives => Stopwatch.GetElapsedTime(0, inCollectives);

    /// <summary>Names what the ranks are doing (e.g. "step 12"), for the error of a collective that times out.</summary>
    public void SetActivity(string activity) => this.activity = activity;

    public void AllReduceSum<T>(Span<T> buffer) where T : unmanaged
    {
        CollectiveArguments.CheckElement<T>(reduction: true);
        if (buffer.IsEmpty) return;
        lock (Gate)
        {
            begun = Stopwatch.GetTimestamp();
            nint request = 0;
            fixed (T* data = buffer)
            {
                Started(mpi.Iallreduce((void*)mpi.InPlace, data, buffer.Length, Datatype<T>(), mpi.OpSum, mpi.CommWorld, &request), "MPI_Iallreduce");
                Wait(&request, "MPI_Allreduce", buffer.Length, typeof(T));
            }
        }
    }

    public void AllGather<T>(ReadOnlySpan<T> local, Span<T> all) where T : unmanaged
    {
        CollectiveArguments.CheckElement<T>(reduction: false);
        CollectiveArguments.CheckGather(local.Length, all.Length, Size);
        if (local.IsEmpty) return;
        lock (Gate)
        {
            begun = Stopwatch.GetTimestamp();
            nint request = 0;
            fixed (T* send = local)
            fixed (T* receive = all)
            {
                Started(mpi.Iallgather(send, local.Length, Datatype<T>(), receive, local.Length, Datatype<T>(), mpi.CommWorld, &request), "MPI_Iallgather");
                Wait(&request, "MPI_Allgather", local.Length, typeof(T));
            }
        }
    }

    public void Broadcast<T>(Span<T> buffer, int root) where T : unmanaged
    {
        CollectiveArguments.CheckElement<T>(reduction: false);
        CollectiveArguments.CheckRoot(root, Size);
        if (buffer.IsEmpty) return;
        lock (Gate)
        {
            begun = Stopwatch.GetTimestamp();
            nint request = 0;
            fixed (T* data = buffer)
            {
                Started(mpi.Ibcast(data, buffer.Length, Datatype<T>(), root, mpi.CommWorld, &request), "MPI_Ibcast");
                Wait(&request, $"MPI_Bcast from rank {root}", buffer.Length, typeof(T));
            }
        }
    }

    public void Barrier()
    {
        lock (Gate)
        {
            begun = Stopwatch.GetTimestamp();
            nint request = 0;
            Started(mpi.Ibarrier(mpi.CommWorld, &request), "MPI_Ibarrier");
            Wait(&request, "MPI_Barrier", 0, null);
        }
    }

    /// <summary>Ends every rank of the job with <paramref name="code"/> (<c>MPI_Abort</c>): for a rank that cannot go on alone. Does not return.</summary>
    public void Abort(int code)
    {
        Console.Out.Flush();
        Console.Error.Flush();
        _ = mpi.Abort(mpi.CommWorld, code);
        MpiNative.Exit(code); // MPI_Abort does not return; if it did, this rank still must not go on
    }

    private void Started(int code, string call)
    {
        collectives++;
        if (code != MpiNative.Success) mpi.Check(code, $"{call} (rank {Rank}, collective {collectives}, {activity})");
    }

    /// <summary>
    /// Polls the collective until it completes: no slower than a blocking call, which polls too. After
    /// <see cref="AnswerAfter"/> it answers roll calls; after <see cref="Timeout"/> it ends the job (see there).
    /// </summary>
    private void Wait(nint* request, string call, int count, Type? element)
    {
        int done = 0;
        int code = mpi.Test(request, &done, mpi.StatusIgnore);
        if (code == MpiNative.Success && done != 0)
        {
            inCollectives += Stopwatch.GetTimestamp() - begun;
            return;
        }
        long start = Stopwatch.GetTimestamp();
        long answerAt = start + (long)(AnswerAfter.TotalSeconds * Stopwatch.Frequency);
        long deadline = Timeout is TimeSpan limit ? start + (long)(limit.TotalSeconds * Stopwatch.Frequency) : long.MaxValue;
        string State() => $"rank {Rank} waits in {call} (collective {collectives}, {activity}) for {Stopwatch.GetElapsedTime(start).TotalSeconds:F1} s";
        while (code == MpiNative.Success && done == 0)
        {
            long now = Stopwatch.GetTimestamp();
            if (now >= answerAt)
            {
                rollCall.Answer(State);
                answerAt = now + Stopwatch.Frequency / 1000;
            }
            if (now >= deadline) TimedOut(call, count, element, Stopwatch.GetElapsedTime(start), State);
            code = mpi.Test(request, &done, mpi.StatusIgnore);
        }
        inCollectives += Stopwatch.GetTimestamp() - begun;
        if (code != MpiNative.Success) mpi.Check(code, $"{call} (rank {Rank}, collective {collectives}, {activity})");
    }

    /// <summary>
    /// Names the ranks that do not answer, writes the error and ends the job; does not return. One rank reports: a rank
    /// that has answered another's roll call before its own timeout, or during its own call the call of a lower rank,
    /// leaves the report and the abort to that rank, and ends the job itself only if it is still running well after.
    /// </summary>
    private void TimedOut(string call, int count, Type? element, TimeSpan waited, Func<string> state)
    {
        var grace = RollCallGrace;
        bool deferred = rollCall.LowestCaller is not null;
        if (deferred) AwaitTheEnd(grace, state);
        var answers = rollCall.Call(grace, state);
        if (!deferred && rollCall.LowestCaller < Rank) AwaitTheEnd(grace, state);
        string what = element is null ? call : $"{call} of {count:N0} {ElementName(element)}{(count == 1 ? "" : "s")}";
        string message =
            $"rank {Rank} waited {waited.TotalSeconds:F0} s in {what} (collective {collectives} of this rank, {activity}), longer than the rank timeout of " +
            $"{Timeout!.Value.TotalSeconds:G} s (--rank-timeout, {RankTimeout.EnvironmentVariable}). " + Answers(answers, grace) + "Ending the job (MPI_Abort).";
        Console.Error.WriteLine($"error: {message}");
        Abort(RankTimeout.ExitCode);
    }

    /// <summary>
    /// A roll call from a thread other than the one making the collectives (NCCL's watchdog, while that one waits on the
    /// GPU): who did not answer and what the others wait in, or null when MPI stays busy for <paramref name="wait"/> (a
    /// collective of this rank then holds it, and its own rank timeout names the missing ranks). Answers the calls of other
    /// ranks meanwhile with <paramref name="state"/>.
    /// </summary>
    internal string? CallTheRoll(TimeSpan wait, Func<string> state)
    {
        if (!Gate.TryEnter(wait)) return null;
        try
        {
            return Answers(rollCall.Call(RollCallGrace, state), RollCallGrace);
        }
        finally
        {
            Gate.Exit();
        }
    }

    /// <summary>How long a roll call waits for answers: a tenth of the rank timeout (20 s without one), 2 to 10 s.</summary>
    private TimeSpan RollCallGrace => TimeSpan.FromSeconds(Math.Clamp((Timeout?.TotalSeconds ?? 20) / 10, 2, 10));

    /// <summary>The ranks that did not answer a roll call (by rank, null: none within <paramref name="grace"/>) and the others' answers.</summary>
    private string Answers(string?[] answers, TimeSpan grace)
    {
        var silent = Enumerable.Range(0, Size).Where(q => q != Rank && answers[q] is null).ToList();
        return (silent.Count == 0
                   ? "Every other rank answered: "
                   : $"{Ranks(silent)} did not answer within {grace.TotalSeconds:G} s: dead, stopped, hung, or busy outside the collectives for that long " +
                     "(a rank that is only slow, e.g. rank 0 in a long kNN evaluation or checkpoint write, needs a larger timeout). ") +
               (silent.Count == Size - 1 ? "" : $"{(silent.Count == 0 ? "" : "The others answered: ")}{string.Join("; ", answers.Where(a => a is not null).Take(8))}{(answers.Count(a => a is not null) > 8 ? "; …" : "")}. ");
    }

    /// <summary>Keeps answering roll calls while the rank that called first ends the job (2 grace periods and 10 s at most).</summary>
    private void AwaitTheEnd(TimeSpan grace, Func<string> state)
    {
        long end = Stopwatch.GetTimestamp() + (long)((2 * grace.TotalSeconds + 10) * Stopwatch.Frequency);
        while (Stopwatch.GetTimestamp() < end)
        {
            rollCall.Answer(state);
            Thread.Sleep(10);
        }
    }

    private static string ElementName(Type element) =>
        element == typeof(float) ? "float" : element == typeof(double) ? "double" : element == typeof(int) ? "int"
        : element == typeof(long) ? "long" : "byte";

    private static string Ranks(List<int> ranks) =>
        ranks.Count == 1 ? $"rank {ranks[0]}" : $"ranks {string.Join(", ", ranks.Take(16))}{(ranks.Count > 16 ? $", … ({ranks.Count} in all)" : "")}";

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
