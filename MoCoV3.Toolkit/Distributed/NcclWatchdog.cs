using System.Globalization;

namespace MoCoV3.Distributed;

/// <summary>
/// Bounds how long an NCCL collective may stay unfinished. NCCL calls return once their work is enqueued on the GPU; when a
/// peer dies or stops, the kernel spins and the host blocks at its next synchronisation, forever. So after each enqueue a
/// marker (a CUDA event) is recorded behind the collective (<see cref="Enqueued"/>), and a background thread polls
/// (<see cref="Poll"/>, every <see cref="DefaultInterval"/>) the communicator's asynchronous error and the oldest unfinished
/// marker. When NCCL reports an error, a marker's work fails, or the oldest marker is still unfinished
/// <see cref="Timeout"/> after its collective was enqueued, the watchdog writes an error naming this rank, the collective
/// and the activity (which names the checkpoint <c>--resume auto</c> continues from), aborts the communicator
/// (<c>ncclCommAbort</c>, waited for at most <see cref="AbortWait"/>) and ends the job with exit code
/// <see cref="RankTimeout.ExitCode"/>. Markers come from a pool of at most <see cref="Capacity"/>: when every one is
/// pending, the newest is recorded again, behind the newer collective too (work on one stream completes in order, so the
/// oldest marker is always exact). Without a timeout (0, "wait forever") no markers are recorded and only NCCL's own
/// errors end the job.
/// </summary>
public sealed class NcclWatchdog : IDisposable
{
    /// <summary>How many markers at most (the pending queue's bound).</summary>
    public const int DefaultCapacity = 64;

    /// <summary>How often the background thread polls.</summary>
    public static readonly TimeSpan DefaultInterval = TimeSpan.FromMilliseconds(100);

    /// <summary>How long the watchdog waits for <c>ncclCommAbort</c> before it ends the job anyway.</summary>
    public static readonly TimeSpan AbortWait = TimeSpan.FromSeconds(10);

    /// <summary><c>ncclInProgress</c>: a nonblocking communicator still working, not an error.</summary>
    private const int NcclInProgress = 7;

    /// <summary>One marker in the queue: the collective it follows, the activity then, and when it was enqueued.</summary>
    private sealed record Pending(nint Marker, string Collective, long Number, string Activity, long EnqueuedAt, int Earlier);

    private readonly IWatchedStream stream;
    private readonly Action<string> report;
    private readonly Action<int> end;
    private readonly Func<string?>? rollCall;
    private readonly TimeProvider clock;
    private readonly Lock gate = new();
    private readonly LinkedList<Pending> pending = new();
    private readonly Stack<nint> free = new();
    private readonly ManualResetEventSlim stopping = new(false);
    private volatile string activity = "starting";
    private long collectives;
    private int created;
    private int failed;
    private Thread? thread;

    /// <param name="rank">This rank, for the error.</param>
    /// <param name="size">The number of ranks, for the error.</param>
    /// <param name="timeout">How long a collective may stay unfinished (null: forever).</param>
    /// <param name="stream">The markers, the communicator's error and its abort.</param>
    /// <param name="report">Writes the error (a line beginning "error: ").</param>
    /// <param name="end">Ends the job with the exit code given (does not return in production).</param>
    /// <param name="rollCall">After a timeout, asks the other ranks who is still there and says who did not answer (null: no one to ask).</param>
    /// <param name="clock">The time (tests: a fake).</param>
    /// <param name="capacity">The most markers at once, ≥ 2.</param>
    public NcclWatchdog(int rank, int size, TimeSpan? timeout, IWatchedStream stream, Action<string> report, Action<int> end,
                        Func<string?>? rollCall = null, TimeProvider? clock = null, int capacity = DefaultCapacity)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 2);
        if (timeout is TimeSpan t && t <= TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(timeout), "the timeout is positive, or null for none");
        Rank = rank;
        Size = size;
        Timeout = timeout;
        Capacity = capacity;
        this.stream = stream;
        this.report = report;
        this.end = end;
        this.rollCall = rollCall;
        this.clock = clock ?? TimeProvider.System;
    }

    public int Rank { get; }
    public int Size { get; }
    /// <summary>How long a collective may stay unfinished (null: forever; only NCCL's errors end the job).</summary>
    public TimeSpan? Timeout { get; }
    /// <summary>The most markers at once.</summary>
    public int Capacity { get; }

    /// <summary>Markers recorded and not yet seen complete.</summary>
    public int PendingCount
    {
        get
        {
            lock (gate) return pending.Count;
        }
    }

    /// <summary>Markers made so far (at most <see cref="Capacity"/>).</summary>
    public int MarkersCreated
    {
        get
        {
            lock (gate) return created;
        }
    }

    /// <summary>Whether the watchdog has ended the job (or, in a test, called its end action).</summary>
    public bool Failed => Volatile.Read(ref failed) != 0;

    /// <summary>Names what the ranks do now (e.g. "step 12/100; …"), for the error of a collective enqueued from now on.</summary>
    public void SetActivity(string activity) => this.activity = activity;

    /// <summary>Marks the collective just enqueued on the stream (<paramref name="collective"/> names it in the error).</summary>
    public void Enqueued(string collective)
    {
        long number = Interlocked.Increment(ref collectives);
        if (Timeout is null || Failed) return;
        var entry = new Pending(0, collective, number, activity, clock.GetTimestamp(), 0);
        lock (gate)
        {
            Reap();
            if (free.Count > 0 || created < Capacity)
            {
                nint marker = free.Count > 0 ? free.Pop() : Create();
                stream.Record(marker);
                pending.AddLast(entry with { Marker = marker });
            }
            else
            {
                var newest = pending.Last!;
                stream.Record(newest.Value.Marker);
                newest.Value = entry with { Marker = newest.Value.Marker, Earlier = newest.Value.Earlier + 1 };
            }
        }
    }

    /// <summary>
    /// One look: NCCL's asynchronous error, then the markers from the oldest, freeing the complete ones. Ends the job (see
    /// the class) and returns false on an error or a timeout; true while all is well.
    /// </summary>
    public bool Poll()
    {
        if (Failed) return false;
        int async = stream.AsyncError();
        if (async != 0 && async != NcclInProgress)
        {
            string? oldest;
            lock (gate) oldest = pending.First?.Value is { } p ? $"{Describe(p)} pending" : null;
            Fail(Invariant($"rank {Rank} of {Size}: NCCL reported an asynchronous error, {ResultName(async)}: {stream.ErrorText(async)} (ncclResult_t {async}), ") +
                 $"during {activity}{(oldest is null ? "" : $", with {oldest}")}; a rank has failed or lost its connection. ", askOthers: false);
            return false;
        }
        string? failure = null;
        bool timedOut = false;
        lock (gate)
        {
            while (pending.First?.Value is { } oldest)
            {
                int state = stream.Query(oldest.Marker);
                if (state == CudaRuntime.Success)
                {
                    pending.RemoveFirst();
                    free.Push(oldest.Marker);
                    continue;
                }
                TimeSpan waited = clock.GetElapsedTime(oldest.EnqueuedAt);
                if (state != CudaRuntime.NotReady)
                {
                    failure = Invariant($"rank {Rank} of {Size}: CUDA error {state} (cudaError_t) while waiting for ") +
                              $"{Describe(oldest)} during {oldest.Activity}; the GPU work of this rank failed. ";
                }
                else if (Timeout is TimeSpan limit && waited >= limit)
                {
                    timedOut = true;
                    failure = Invariant($"rank {Rank} of {Size}: {Describe(oldest)} did not complete within {limit.TotalSeconds:G} s during {oldest.Activity}; ") +
                              Invariant($"it has waited {waited.TotalSeconds:F0} s, longer than the rank timeout (--rank-timeout, {RankTimeout.EnvironmentVariable}). ");
                }
                break;
            }
        }
        if (failure is null) return true;
        Fail(failure, askOthers: timedOut);
        return false;
    }

    /// <summary>Starts the background thread that polls every <paramref name="interval"/> (default <see cref="DefaultInterval"/>).</summary>
    public void Start(TimeSpan? interval = null)
    {
        if (thread is not null) return;
        TimeSpan every = interval ?? DefaultInterval;
        thread = new Thread(() =>
        {
            try
            {
                stream.Attach();
                while (!stopping.Wait(every))
                    if (!Poll()) return;
            }
            catch (Exception e)
            {
                Fail($"rank {Rank} of {Size}: the NCCL watchdog failed during {activity}: {e.Message}. ", askOthers: false);
            }
        })
        {
            IsBackground = true,
            Name = $"NCCL watchdog (rank {Rank})",
        };
        thread.Start();
    }

    /// <summary>Stops the background thread (waits for it unless called on it).</summary>
    /// <returns>Whether the thread has ended (or never started).</returns>
    public bool Stop()
    {
        stopping.Set();
        if (thread is null || thread == Thread.CurrentThread) return thread is null;
        return thread.Join(AbortWait + TimeSpan.FromSeconds(5));
    }

    /// <summary>Stops the thread and destroys every marker (pending ones are freed by CUDA when their work completes).</summary>
    public void Dispose()
    {
        if (!Stop()) return;   // still ending the job: the process goes, and the markers with it
        lock (gate)
        {
            foreach (var p in pending) stream.DestroyMarker(p.Marker);
            pending.Clear();
            while (free.Count > 0) stream.DestroyMarker(free.Pop());
            created = 0;
        }
    }

    private nint Create()
    {
        nint marker = stream.CreateMarker();
        created++;
        return marker;
    }

    /// <summary>Frees the complete markers at the head of the queue (errors are left for <see cref="Poll"/> to report).</summary>
    private void Reap()
    {
        while (pending.First?.Value is { } oldest && stream.Query(oldest.Marker) == CudaRuntime.Success)
        {
            pending.RemoveFirst();
            free.Push(oldest.Marker);
        }
    }

    private static string Describe(Pending p) =>
        Invariant($"NCCL {p.Collective} (collective {p.Number} of this rank{(p.Earlier == 0 ? "" : $", marked together with the {p.Earlier} before it")})");

    /// <summary>Writes the error, aborts the communicator (bounded) and ends the job, once.</summary>
    private void Fail(string message, bool askOthers)
    {
        if (Interlocked.Exchange(ref failed, 1) != 0) return;
        string others = "";
        if (askOthers)
        {
            string? answers = null;
            try
            {
                answers = rollCall?.Invoke();
            }
            catch (Exception e)
            {
                answers = $"(the roll call failed: {e.Message}) ";
            }
            others = answers is null
                ? "Another rank is dead, stopped, hung, or busy outside the collectives for that long (a rank that is only slow, e.g. rank 0 in a " +
                  "long kNN evaluation or checkpoint write, needs a larger timeout). "
                : answers.TrimEnd() + " ";
        }
        report(Invariant($"error: {message}{others}Ending the job (ncclCommAbort, exit code {RankTimeout.ExitCode})."));
        var abort = new Thread(() =>
        {
            try
            {
                stream.Abort();
            }
            catch (Exception e)
            {
                report($"warning: ncclCommAbort failed on rank {Rank}: {e.Message}");
            }
        })
        {
            IsBackground = true,
            Name = $"NCCL abort (rank {Rank})",
        };
        abort.Start();
        if (!abort.Join(AbortWait))
            report(Invariant($"warning: ncclCommAbort did not return within {AbortWait.TotalSeconds:G} s on rank {Rank}; ending the job anyway"));
        end(RankTimeout.ExitCode);
    }

    /// <summary>The name of an <c>ncclResult_t</c> (nccl.h).</summary>
    internal static string ResultName(int result) => result switch
    {
        0 => "ncclSuccess",
        1 => "ncclUnhandledCudaError",
        2 => "ncclSystemError",
        3 => "ncclInternalError",
        4 => "ncclInvalidArgument",
        5 => "ncclInvalidUsage",
        6 => "ncclRemoteError",
        7 => "ncclInProgress",
        _ => $"ncclResult_t {result}",
    };

    private static string Invariant(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);
}
