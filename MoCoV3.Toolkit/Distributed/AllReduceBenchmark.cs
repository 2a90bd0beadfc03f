using System.Diagnostics;

namespace MoCoV3.Distributed;

/// <summary>
/// Times an in-place float all-reduce of a gradient-sized buffer against a <c>memcpy</c> of the same bytes on the same
/// rank. Every repetition starts after a barrier; a repetition's time is the slowest rank's. Bandwidths: algorithm
/// bandwidth = bytes / time; bus bandwidth = algorithm bandwidth · 2(S − 1)/S, the bytes each rank must send and receive
/// in a ring all-reduce (NCCL's convention, comparable across world sizes).
/// </summary>
public static class AllReduceBenchmark
{
    /// <summary>The trainable parameters of MoCo v3 ViT-S, about 43 M: backbone ≈ 21.7 M, projector ≈ 19.4 M, predictor ≈ 2.1 M (the momentum encoder has no gradients).</summary>
    public const int VitSmallGradientFloats = 43_000_000;

    public sealed record Result(
        int Ranks, string Communicator, long Floats, long Bytes, int Repeats,
        double AllReduceSecondsMedian, double AllReduceSecondsMin, double MemcpySecondsMedian, double MemcpySecondsMin,
        double AlgorithmGigabytesPerSecond, double BusGigabytesPerSecond, double MemcpyGigabytesPerSecond);

    public static Result Run(ICommunicator communicator, int floats = VitSmallGradientFloats, int repeats = 5)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(floats, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(repeats, 1);
        var buffer = new float[floats];
        var copy = new float[floats];
        buffer.AsSpan().Fill(1f);
        copy.AsSpan().Fill(2f);   // touch every page before timing

        communicator.AllReduceSum<float>(buffer);   // warm-up: connections, registration
        var reduce = new double[repeats];
        var memcpy = new double[repeats];
        var slowest = new double[communicator.Size];
        for (int k = 0; k < repeats; k++)
        {
            communicator.Barrier();
            long start = Stopwatch.GetTimestamp();
            communicator.AllReduceSum<float>(buffer);
            reduce[k] = SlowestRank(communicator, Stopwatch.GetElapsedTime(start).TotalSeconds, slowest);

            start = Stopwatch.GetTimestamp();
            buffer.AsSpan().CopyTo(copy);
            memcpy[k] = SlowestRank(communicator, Stopwatch.GetElapsedTime(start).TotalSeconds, slowest);
        }
        long bytes = (long)floats * sizeof(float);
        double reduceMedian = Median(reduce), memcpyMedian = Median(memcpy);
        double algorithm = bytes / reduceMedian / 1e9;
        int s = communicator.Size;
        return new Result(s, communicator.Description, floats, bytes, repeats,
            reduceMedian, reduce.Min(), memcpyMedian, memcpy.Min(),
            algorithm, s > 1 ? algorithm * 2 * (s - 1) / s : algorithm, bytes / memcpyMedian / 1e9);
    }

    private static double SlowestRank(ICommunicator communicator, double seconds, double[] scratch)
    {
        communicator.AllGather<double>([seconds], scratch);
        return scratch.Max();
    }

    private static double Median(double[] values)
    {
        var sorted = values.Order().ToArray();
        int n = sorted.Length;
        return n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
    }
}
