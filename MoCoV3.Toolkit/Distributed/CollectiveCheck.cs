using System.Text;
using static TorchSharp.torch;

namespace MoCoV3.Distributed;

/// <summary>
/// Runs every collective once on data that is a known function of the rank, and returns what this rank received, so that
/// a caller who knows the formulas can check an MPI installation (<c>mocov3 mpi check</c>, and the tests at 1, 2 and 4
/// ranks). Rank r of S contributes:
/// <list type="bullet">
/// <item>float all-reduce: r + 1 + 0.5·i, i &lt; 7;</item>
/// <item>double all-reduce: (r + 1)/1024 + i, i &lt; 5;</item>
/// <item>long all-reduce: (r + 1)·2⁴⁰ + i, i &lt; 3;</item>
/// <item>large float all-reduce: (r + 1)·(i mod 1024), i &lt; <see cref="LargeCount"/> (reported as its double sum and samples at <see cref="LargeSampleIndices"/>);</item>
/// <item>float all-gather: [r, 10r + 0.5, −r];</item>
/// <item>float broadcast from rank S − 1: [1.5·S, −2, 3.25] there, zeros elsewhere; byte broadcast from rank 0: <see cref="Token"/>;</item>
/// <item>tensor all-reduce (float32 [3, 4]): arange(12) + 100·r; all-reduce of the view [3, 7) of a float32 buffer of 10 filled with r + 1;</item>
/// <item>tensor all-gather (float32 [1, 2]): [[r, r + 0.5]].</item>
/// </list>
/// </summary>
public static class CollectiveCheck
{
    public const int LargeCount = 4_000_037;
    public const string Token = "token-from-rank-0";
    public static readonly int[] LargeSampleIndices = [0, 1023, 1024, 2_000_000, LargeCount - 1];

    public sealed record Result(
        int Rank, int Size, string Launcher, int LocalRank, string Communicator,
        float[] FloatSum, double[] DoubleSum, long[] LongSum, double LargeTotal, float[] LargeSamples,
        float[] Gathered, float[] Broadcast, string BroadcastText,
        float[] TensorSum, float[] ViewBuffer, float[] GatheredTensor, long[] GatheredShape, bool NullReferenceCaught);

    public static Result Run(ICommunicator c, LaunchEnvironment launch)
    {
        int r = c.Rank, size = c.Size;

        float[] floats = [.. Enumerable.Range(0, 7).Select(i => r + 1 + 0.5f * i)];
        c.AllReduceSum<float>(floats);
        double[] doubles = [.. Enumerable.Range(0, 5).Select(i => (r + 1) / 1024.0 + i)];
        c.AllReduceSum<double>(doubles);
        long[] longs = [.. Enumerable.Range(0, 3).Select(i => ((r + 1L) << 40) + i)];
        c.AllReduceSum<long>(longs);

        var large = new float[LargeCount];
        for (int i = 0; i < large.Length; i++) large[i] = (r + 1) * (i % 1024);
        c.AllReduceSum<float>(large);
        double largeTotal = 0;
        foreach (float x in large) largeTotal += x;

        var gathered = new float[3 * size];
        c.AllGather<float>([r, 10 * r + 0.5f, -r], gathered);

        float[] broadcast = r == size - 1 ? [1.5f * size, -2, 3.25f] : new float[3];
        c.Broadcast<float>(broadcast, root: size - 1);
        var token = new byte[32];
        if (r == 0) Encoding.ASCII.GetBytes(Token).CopyTo(token, 0);
        c.Broadcast<byte>(token, root: 0);

        float[] tensorSum, viewBuffer, gatheredTensor;
        long[] gatheredShape;
        using (NewDisposeScope())
        {
            var t = arange(12, ScalarType.Float32).reshape(3, 4) + 100 * r;
            c.AllReduceSum(t);
            tensorSum = t.data<float>().ToArray();

            var buffer = full(10, r + 1, ScalarType.Float32);
            c.AllReduceSum(buffer.narrow(0, 3, 4));
            viewBuffer = buffer.data<float>().ToArray();

            var all = c.AllGather(tensor(new float[] { r, r + 0.5f }).reshape(1, 2));
            gatheredTensor = all.data<float>().ToArray();
            gatheredShape = all.shape;
        }
        c.Barrier();

        return new Result(r, size, launch.Launcher.ToString(), launch.LocalRank, c.Description,
            floats, doubles, longs, largeTotal, [.. LargeSampleIndices.Select(i => large[i])],
            gathered, broadcast, Encoding.ASCII.GetString(token).TrimEnd('\0'),
            tensorSum, viewBuffer, gatheredTensor, gatheredShape, CatchesNullReference());
    }

    // After MPI_Init: a runtime that took SIGSEGV from .NET (UCX does, unless UCX_ERROR_SIGNALS is empty) aborts here.
    private static bool CatchesNullReference()
    {
        try
        {
            string? nothing = Environment.GetEnvironmentVariable("MOCOV3_UNSET_VARIABLE_FOR_MPI_CHECK");
            return nothing!.Length < 0;
        }
        catch (NullReferenceException)
        {
            return true;
        }
    }
}
