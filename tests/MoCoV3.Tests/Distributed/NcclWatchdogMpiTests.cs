using System.Diagnostics;
using MoCoV3.Distributed;

namespace MoCoV3.Tests.Distributed;

/// <summary>
/// The NCCL watchdog's end of a job over real MPI (Open MPI, 2 ranks of tests/MpiHost's watchdog scenario), with a fake GPU
/// stream in place of CUDA: the roll call from the watchdog's own thread, the error, the abort and <c>MPI_Abort</c>.
/// Rank 1 stays out of MPI (as a stopped rank) and rank 0's main thread sleeps (as a host blocked on the GPU), so only the
/// watchdog can end the job; the scenario exits 3 after a minute if it does not.
/// </summary>
[TestClass]
public sealed class NcclWatchdogMpiTests
{
    public TestContext TestContext { get; set; } = null!;

    [TestMethod]
    public void AStuckCollectiveEndsTheJobNamingTheRankThatDidNotAnswer()
    {
        var clock = Stopwatch.StartNew();
        var (code, output, errors) = MpiHostRun.Launch("watchdog", 2, "stuck");
        TestContext.WriteLine($"ended in {clock.Elapsed.TotalSeconds:F1} s, code {code}\n{errors}");
        Assert.AreEqual(RankTimeout.ExitCode, code, $"{errors}\n{output}");
        StringAssert.Contains(errors,
            "error: rank 0 of 2: NCCL ncclAllReduce of 4 Float32 (collective 1 of this rank) did not complete within 1 s during step 3/10; no checkpoint written yet; " +
            "it has waited 1 s, longer than the rank timeout (--rank-timeout, MOCOV3_RANK_TIMEOUT). " +
            "rank 1 did not answer within 2 s: dead, stopped, hung, or busy outside the collectives for that long");
        // The error, then the abort. Not necessarily adjacent: mpirun's own MPI_ABORT banner reaches the same stream from
        // another process and may come between them.
        int error = errors.IndexOf("Ending the job (ncclCommAbort, exit code 124).", StringComparison.Ordinal);
        Assert.IsTrue(error >= 0, errors);
        Assert.IsTrue(errors.IndexOf("(ncclCommAbort)\n", error, StringComparison.Ordinal) > error, $"the abort after the error:\n{errors}");
    }

    [TestMethod]
    public void AnNcclErrorEndsTheJobWithoutARollCall()
    {
        var (code, output, errors) = MpiHostRun.Launch("watchdog", 2, "error");
        Assert.AreEqual(RankTimeout.ExitCode, code, $"{errors}\n{output}");
        StringAssert.Contains(errors, "error: rank 0 of 2: NCCL reported an asynchronous error, ncclRemoteError: remote process exited or there was a network error (ncclResult_t 6), " +
                                      "during step 3/10; no checkpoint written yet, with NCCL ncclAllReduce of 4 Float32 (collective 1 of this rank) pending;");
        Assert.IsFalse(errors.Contains("did not answer", StringComparison.Ordinal), errors);
    }
}
