using System.Diagnostics;
using TorchSharp;
using static TorchSharp.torch;

namespace MoCoV3.Distributed;

/// <summary>
/// NCCL on known data and timed, for <c>mocov3 nccl check|bench</c> on a GPU machine: each collective on CUDA tensors whose
/// values depend on the rank, and a host-buffer sum (MPI's under mpirun, staged through CUDA under a torchrun-style launch).
/// </summary>
public static class NcclCheck
{
    /// <summary>What one rank received; <see cref="Ok"/> when every value is the expected one.</summary>
    public sealed record Result(int Rank, int Size, string Device, string Communicator, bool Ok, double SumError, double AverageError,
                                double GatherError, double BroadcastError, double HostSumError);

    /// <summary>All-reduce sum and average, all-gather and broadcast of rank-dependent CUDA tensors, and a host-buffer sum.</summary>
    public static Result Run(NcclCommunicator nccl)
    {
        var device = new Device(DeviceType.CUDA, nccl.Device);
        int r = nccl.Rank, s = nccl.Size;
        double sumRanks = s * (s - 1) / 2.0;
        using var index = arange(1000, ScalarType.Float32, device);
        using var sum = index + r;                       // Σ_r (i + r) = S·i + S(S−1)/2
        nccl.AllReduce(sum);
        double sumError = (sum - (index * s + sumRanks)).abs().max().item<float>();
        using var mean = index * (r + 1);                // mean_r (i·(r+1)) = i·(S+1)/2
        nccl.AllReduce(mean, average: true);
        double averageError = (mean - index * ((s + 1) / 2.0)).abs().max().item<float>();
        using var row = full(new long[] { 2, 3 }, r, ScalarType.Int64, device);
        using var all = nccl.AllGather(row);          // rows 2r, 2r+1 hold r
        using var expectedRows = arange(s, ScalarType.Int64, device).repeat_interleave(2).unsqueeze(1).expand(2 * s, 3);
        double gatherError = (all - expectedRows).abs().max().item<long>();
        using var root = full(5, r + 10.0, ScalarType.Float64, device);
        nccl.Broadcast(root, s - 1);                    // the last rank's 10 + S − 1
        double broadcastError = (root - (10.0 + s - 1)).abs().max().item<double>();
        double[] host = [r + 0.5];
        nccl.AllReduceSum<double>(host);
        double hostError = Math.Abs(host[0] - (sumRanks + 0.5 * s));
        bool ok = sumError == 0 && averageError < 1e-3 && gatherError == 0 && broadcastError == 0 && hostError == 0;
        return new Result(r, s, $"cuda:{nccl.Device}", nccl.Description, ok, sumError, averageError, gatherError, broadcastError, hostError);
    }

    /// <summary>One rank's timing of an in-place float all-reduce on CUDA; times are the slowest rank's.</summary>
    public sealed record Bench(int Ranks, string Communicator, long Floats, long Bytes, int Repeats, double SecondsMedian, double SecondsMin,
                               double AlgorithmGigabytesPerSecond, double BusGigabytesPerSecond);

    /// <summary>Times an in-place all-reduce of <paramref name="floats"/> floats on this rank's GPU (one warm-up, then <paramref name="repeats"/>).</summary>
    public static Bench Time(NcclCommunicator nccl, int floats = AllReduceBenchmark.VitSmallGradientFloats, int repeats = 10)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(floats, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(repeats, 1);
        using var buffer = ones(floats, ScalarType.Float32, new Device(DeviceType.CUDA, nccl.Device));
        nccl.AllReduce(buffer);   // warm-up: connections, buffers
        cuda.synchronize();
        var times = new double[repeats];
        var slowest = new double[nccl.Size];
        for (int k = 0; k < repeats; k++)
        {
            nccl.Barrier();
            long start = Stopwatch.GetTimestamp();
            nccl.AllReduce(buffer);
            cuda.synchronize();
            nccl.AllGather<double>([Stopwatch.GetElapsedTime(start).TotalSeconds], slowest);
            times[k] = slowest.Max();
        }
        Array.Sort(times);
        double median = repeats % 2 == 1 ? times[repeats / 2] : (times[repeats / 2 - 1] + times[repeats / 2]) / 2;
        long bytes = (long)floats * sizeof(float);
        double algorithm = bytes / median / 1e9;
        int s = nccl.Size;
        return new Bench(s, nccl.Description, floats, bytes, repeats, median, times[0], algorithm, s > 1 ? algorithm * 2 * (s - 1) / s : algorithm);
    }
}
