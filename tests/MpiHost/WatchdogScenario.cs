using MoCoV3.Distributed;

/// <summary>
/// MpiHost watchdog stuck|error: the NCCL watchdog's end of a job over real MPI, with a fake GPU stream (no CUDA here).
/// Rank 0 watches a collective that never completes (stuck: rank timeout 1 s) or whose communicator reports
/// ncclRemoteError (error), as <see cref="NcclCommunicator"/> would, while its main thread sleeps as a host blocked at a
/// synchronisation; rank 1 stays out of MPI, as a stopped rank. Expected: rank 0's watchdog, from its own thread, calls the
/// roll over MPI (stuck only), finds rank 1 silent, writes the error and ends the job with MPI_Abort, exit code 124.
/// Exits 3 if nothing ended the job within a minute.
/// </summary>
internal static class WatchdogScenario
{
    public static int Run(string[] args)
    {
        bool error = args is ["error"];
        using var context = DistributedContext.Open(rankTimeoutSeconds: 1);
        var world = context.Communicator;
        world.Barrier();   // every rank is up
        if (world.Rank == 0)
        {
            var stream = new NeverDone { Async = error ? 6 : 0 };
            var dog = NcclCommunicator.Watch(world.Rank, world.Size, TimeSpan.FromSeconds(1), stream, world, () => "step 3/10; no checkpoint written yet");
            dog.SetActivity("step 3/10; no checkpoint written yet");
            dog.Enqueued("ncclAllReduce of 4 Float32");
            dog.Start();
        }
        Thread.Sleep(TimeSpan.FromMinutes(1));
        return 3;
    }

    /// <summary>A stream whose work never completes.</summary>
    private sealed class NeverDone : IWatchedStream
    {
        private nint made;
        public int Async { get; init; }
        public void Attach()
        {
        }

        public nint CreateMarker() => ++made;
        public void Record(nint marker)
        {
        }

        public int Query(nint marker) => 600;   // cudaErrorNotReady
        public void DestroyMarker(nint marker)
        {
        }

        public int AsyncError() => Async;
        public string ErrorText(int result) => "remote process exited or there was a network error";
        public void Abort() => Console.Error.WriteLine("(ncclCommAbort)");
    }
}
