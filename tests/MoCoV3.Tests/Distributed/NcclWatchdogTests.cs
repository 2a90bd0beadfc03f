using MoCoV3.Distributed;

namespace MoCoV3.Tests.Distributed;

/// <summary>
/// <see cref="NcclWatchdog"/>'s decisions over a fake stream and a fake clock (no GPU, no NCCL, no sleeping): a collective
/// that completes in time ends nothing, one stuck past the rank timeout ends the job naming the rank, the collective and the
/// activity, an NCCL asynchronous error ends it at the next look with NCCL's name for it, no timeout records no markers, and
/// the markers stay within their pool however many collectives are pending. The real CUDA/NCCL side is run by bench/gpu-dp.sh.
/// </summary>
[TestClass]
public sealed class NcclWatchdogTests
{
    private const string Step7 = "step 7/20; run/checkpoint.ckpt holds step 4, which --resume auto continues from";

    [TestMethod]
    public void CollectivesThatCompleteInTimeEndNothingAndFreeTheirMarkers()
    {
        var (dog, stream, clock, ending) = Make(timeout: 10);
        dog.SetActivity(Step7);
        dog.Enqueued("ncclAllReduce of 1,000 Float32");
        dog.Enqueued("ncclAllGather of 64 Float32 per rank");
        Assert.AreEqual(2, dog.PendingCount);
        clock.Advance(9.9);
        Assert.IsTrue(dog.Poll(), "9.9 s of the 10 s have passed");
        stream.CompleteAll();
        clock.Advance(60);
        Assert.IsTrue(dog.Poll(), "complete collectives do not time out");
        Assert.AreEqual(0, dog.PendingCount);
        Assert.AreEqual(0, stream.Aborts);
        Assert.AreEqual(0, ending.Reports.Count);
        Assert.IsNull(ending.Code);
        dog.Enqueued("ncclAllReduce of 1,000 Float32");
        Assert.AreEqual(2, dog.MarkersCreated, "a freed marker is used again");
        dog.Dispose();
        Assert.AreEqual(2, stream.Destroyed.Count, "every marker is destroyed at the end");
    }

    [TestMethod]
    public void ACollectiveStuckPastTheTimeoutEndsTheJobNamingRankCollectiveAndActivity()
    {
        var (dog, stream, clock, ending) = Make(timeout: 10, rank: 0, size: 2, rollCall: () => "rank 1 did not answer within 2 s: dead, stopped, hung, or busy.");
        dog.SetActivity("step 6/20; no checkpoint written yet");
        dog.Enqueued("ncclAllReduce of 5 Float32");
        stream.CompleteAll();
        dog.SetActivity(Step7);
        clock.Advance(1);
        dog.Enqueued("ncclAllReduce of 21,808 Float32");   // collective 2: the one that hangs
        clock.Advance(3);
        dog.Enqueued("ncclAllGather of 64 Float32 per rank");
        clock.Advance(6.5);
        Assert.IsTrue(dog.Poll(), "the stuck collective has waited 9.5 s of 10");
        Assert.IsNull(ending.Code);
        clock.Advance(0.5);
        Assert.IsFalse(dog.Poll(), "10 s: the rank timeout");
        Assert.AreEqual(RankTimeout.ExitCode, ending.Code);
        Assert.AreEqual(1, stream.Aborts, "ncclCommAbort once");
        Assert.AreEqual(1, ending.Reports.Count, string.Join("\n", ending.Reports));
        Assert.AreEqual(
            "error: rank 0 of 2: NCCL ncclAllReduce of 21,808 Float32 (collective 2 of this rank) did not complete within 10 s during " + Step7 +
            "; it has waited 10 s, longer than the rank timeout (--rank-timeout, MOCOV3_RANK_TIMEOUT). " +
            "rank 1 did not answer within 2 s: dead, stopped, hung, or busy. Ending the job (ncclCommAbort, exit code 124).",
            ending.Reports[0]);
        clock.Advance(100);
        Assert.IsFalse(dog.Poll(), "ended once");
        Assert.AreEqual(1, stream.Aborts);
        Assert.AreEqual(1, ending.Ends);
    }

    [TestMethod]
    public void WithoutARollCallTheErrorSaysWhatASilentRankMayBe()
    {
        var (dog, _, clock, ending) = Make(timeout: 2.5, rank: 3, size: 4);
        dog.SetActivity(Step7);
        dog.Enqueued("ncclBroadcast from rank 0 of 9 Int64");
        clock.Advance(2.5);
        Assert.IsFalse(dog.Poll());
        StringAssert.StartsWith(ending.Reports[0], "error: rank 3 of 4: NCCL ncclBroadcast from rank 0 of 9 Int64 (collective 1 of this rank) did not complete within 2.5 s during step 7/20;");
        StringAssert.Contains(ending.Reports[0], "Another rank is dead, stopped, hung, or busy outside the collectives for that long");
        StringAssert.EndsWith(ending.Reports[0], "Ending the job (ncclCommAbort, exit code 124).");
    }

    [TestMethod]
    public void AnAsynchronousNcclErrorEndsTheJobAtTheNextLookWithNcclsName()
    {
        var (dog, stream, clock, ending) = Make(timeout: 300, rank: 1, size: 2, rollCall: () => "rank 0 did not answer.");
        dog.SetActivity(Step7);
        dog.Enqueued("ncclAllReduce of 21,808 Float32");
        Assert.IsTrue(dog.Poll());
        stream.Async = 7;   // ncclInProgress: a nonblocking communicator at work, not an error
        Assert.IsTrue(dog.Poll());
        stream.Async = 6;
        clock.Advance(0.1);
        Assert.IsFalse(dog.Poll(), "0.1 s after the collective, long before the 300 s timeout");
        Assert.AreEqual(RankTimeout.ExitCode, ending.Code);
        Assert.AreEqual(1, stream.Aborts);
        Assert.AreEqual(
            "error: rank 1 of 2: NCCL reported an asynchronous error, ncclRemoteError: remote process exited or there was a network error (ncclResult_t 6), " +
            "during " + Step7 + ", with NCCL ncclAllReduce of 21,808 Float32 (collective 1 of this rank) pending; a rank has failed or lost its connection. " +
            "Ending the job (ncclCommAbort, exit code 124).", ending.Reports[0]);
        Assert.AreEqual(0, stream.RollCalls, "no roll call for an error NCCL reported");
    }

    [TestMethod]
    public void ACudaErrorBehindACollectiveEndsTheJob()
    {
        var (dog, stream, _, ending) = Make(timeout: 300);
        dog.SetActivity(Step7);
        dog.Enqueued("ncclAllReduce of 8 Float32");
        stream.QueryResult = 700;   // cudaErrorIllegalAddress
        Assert.IsFalse(dog.Poll());
        StringAssert.StartsWith(ending.Reports[0], "error: rank 0 of 2: CUDA error 700 (cudaError_t) while waiting for NCCL ncclAllReduce of 8 Float32 (collective 1 of this rank) during step 7/20");
        Assert.AreEqual(1, stream.Aborts);
    }

    [TestMethod]
    public void NoTimeoutRecordsNoMarkersAndWaitsForeverButNcclErrorsStillEndTheJob()
    {
        var (dog, stream, clock, ending) = Make(timeout: null);
        for (int k = 0; k < 10; k++) dog.Enqueued("ncclAllReduce of 8 Float32");
        clock.Advance(1e6);
        Assert.IsTrue(dog.Poll());
        Assert.AreEqual(0, dog.PendingCount);
        Assert.AreEqual(0, stream.Created);
        Assert.IsNull(ending.Code);
        stream.Async = 2;
        Assert.IsFalse(dog.Poll());
        StringAssert.Contains(ending.Reports[0], "ncclSystemError: system call failed (ncclResult_t 2), during starting;");
        Assert.AreEqual(RankTimeout.ExitCode, ending.Code);
    }

    [TestMethod]
    public void ThePendingQueueIsBoundedAndItsOldestCollectiveStillTimesOut()
    {
        var (dog, stream, clock, ending) = Make(timeout: 30, capacity: 4);
        dog.SetActivity(Step7);
        for (int k = 1; k <= 100; k++)
        {
            dog.Enqueued($"ncclAllReduce #{k}");
            clock.Advance(0.1);
        }
        Assert.AreEqual(4, stream.Created, "no more markers than the pool holds");
        Assert.AreEqual(4, dog.PendingCount);
        Assert.AreEqual(100, stream.Records, "every collective is marked: the newest marker again once the pool is used up");
        stream.CompleteThrough(3);   // the first three markers' work is done: collectives 1-3
        Assert.IsTrue(dog.Poll());
        Assert.AreEqual(1, dog.PendingCount, "the fourth marker, recorded again behind collective 100, is still pending");
        clock.Advance(20.1);   // collective 4 was enqueued 29.8 s ago, collective 100 20.2 s ago
        Assert.IsTrue(dog.Poll(), "the re-recorded marker counts from its newest collective");
        clock.Advance(10);
        Assert.IsFalse(dog.Poll());
        StringAssert.StartsWith(ending.Reports[0], "error: rank 0 of 2: NCCL ncclAllReduce #100 (collective 100 of this rank, marked together with the 96 before it) did not complete within 30 s");
        // Markers are reused once free: the pool does not grow.
        var (again, stream2, _, _) = Make(timeout: 30, capacity: 4);
        for (int k = 0; k < 50; k++)
        {
            again.Enqueued("ncclAllReduce");
            stream2.CompleteAll();
        }
        Assert.AreEqual(1, stream2.Created);
        Assert.AreEqual(1, again.PendingCount);
    }

    [TestMethod]
    public void TheBackgroundThreadEndsTheJobOnItsOwnAndStopsCleanly()
    {
        // Real time, but no waiting on a timeout: an asynchronous error is seen at the thread's first look.
        var stream = new FakeStream { Async = 3 };
        var ending = new Ending();
        using var done = new ManualResetEventSlim();
        var dog = new NcclWatchdog(0, 2, TimeSpan.FromSeconds(300), stream, ending.Report, code =>
        {
            ending.End(code);
            done.Set();
        });
        dog.Start(TimeSpan.FromMilliseconds(1));
        Assert.IsTrue(done.Wait(TimeSpan.FromSeconds(30)), "the watchdog thread ended the job");
        Assert.IsTrue(stream.Attached);
        StringAssert.Contains(ending.Reports[0], "ncclInternalError");
        Assert.IsTrue(dog.Stop());
        dog.Dispose();

        var quiet = new FakeStream();
        var calm = new NcclWatchdog(0, 2, TimeSpan.FromSeconds(300), quiet, ending.Report, ending.End);
        calm.Start(TimeSpan.FromMilliseconds(1));
        calm.Enqueued("ncclAllReduce");
        calm.Dispose();
        Assert.AreEqual(1, quiet.Destroyed.Count);
        Assert.AreEqual(1, ending.Ends, "the healthy watchdog ended nothing");
    }

    private static (NcclWatchdog Dog, FakeStream Stream, FakeClock Clock, Ending Ending) Make(double? timeout, int rank = 0, int size = 2,
                                                                                             Func<string?>? rollCall = null, int capacity = NcclWatchdog.DefaultCapacity)
    {
        var stream = new FakeStream();
        var clock = new FakeClock();
        var ending = new Ending();
        Func<string?>? counted = rollCall is null ? null : () =>
        {
            stream.RollCalls++;
            return rollCall();
        };
        var dog = new NcclWatchdog(rank, size, timeout is double s ? TimeSpan.FromSeconds(s) : null, stream, ending.Report, ending.End, counted, clock, capacity);
        return (dog, stream, clock, ending);
    }

    /// <summary>What the watchdog reported and how it ended the job.</summary>
    private sealed class Ending
    {
        public List<string> Reports { get; } = [];
        public int? Code { get; private set; }
        public int Ends { get; private set; }
        public void Report(string message) => Reports.Add(message);

        public void End(int code)
        {
            Code = code;
            Ends++;
        }
    }

    /// <summary>Time that moves only when told.</summary>
    private sealed class FakeClock : TimeProvider
    {
        private long ticks = 1_000_000;
        public override long TimestampFrequency => TimeSpan.TicksPerSecond;
        public override long GetTimestamp() => ticks;
        public void Advance(double seconds) => ticks += (long)Math.Round(seconds * TimeSpan.TicksPerSecond);
    }

    /// <summary>
    /// One stream's work in order: each record is the next piece of work; a marker is complete once the work it last
    /// captured is (<see cref="CompleteThrough"/>).
    /// </summary>
    private sealed class FakeStream : IWatchedStream
    {
        private readonly Dictionary<nint, long> captured = [];
        private long completedThrough;
        public int Created { get; private set; }
        public long Records { get; private set; }
        public int Aborts { get; private set; }
        public int RollCalls { get; set; }
        public bool Attached { get; private set; }
        public int Async { get; set; }
        public int? QueryResult { get; set; }
        public List<nint> Destroyed { get; } = [];

        public void CompleteAll() => completedThrough = Records;
        public void CompleteThrough(long record) => completedThrough = record;

        public void Attach() => Attached = true;
        public nint CreateMarker() => ++Created;

        public void Record(nint marker)
        {
            Assert.IsTrue(marker >= 1 && marker <= Created && !Destroyed.Contains(marker), $"marker {marker} is live");
            captured[marker] = ++Records;
        }

        public int Query(nint marker) =>
            QueryResult ?? (!captured.TryGetValue(marker, out long work) || work <= completedThrough ? 0 : 600);

        public void DestroyMarker(nint marker) => Destroyed.Add(marker);
        public int AsyncError() => Async;

        public string ErrorText(int result) => result switch
        {
            2 => "system call failed",
            3 => "internal error",
            6 => "remote process exited or there was a network error",
            _ => "other",
        };

        public void Abort() => Aborts++;
    }
}
