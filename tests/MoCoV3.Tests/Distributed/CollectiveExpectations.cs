using MoCoV3.Distributed;

namespace MoCoV3.Tests.Distributed;

/// <summary>
/// What each rank of <see cref="CollectiveCheck"/> must receive, in closed form (every value is exactly representable, so
/// the comparisons are exact). With S ranks, Σ_r (r + 1) = S(S + 1)/2 and Σ_r r = S(S − 1)/2.
/// </summary>
internal static class CollectiveExpectations
{
    public static void Verify(CollectiveCheck.Result result, int rank, int size)
    {
        double s = size, ones = size * (size + 1) / 2.0, ranks = size * (size - 1) / 2.0;
        string at = $"rank {rank} of {size}";
        Assert.AreEqual(rank, result.Rank, at);
        Assert.AreEqual(size, result.Size, at);
        CollectionAssert.AreEqual(Enumerable.Range(0, 7).Select(i => (float)(ones + 0.5 * i * s)).ToArray(), result.FloatSum, $"float all-reduce, {at}");
        CollectionAssert.AreEqual(Enumerable.Range(0, 5).Select(i => ones / 1024 + s * i).ToArray(), result.DoubleSum, $"double all-reduce, {at}");
        CollectionAssert.AreEqual(Enumerable.Range(0, 3).Select(i => (long)ones * (1L << 40) + size * i).ToArray(), result.LongSum, $"long all-reduce, {at}");

        // Σ_{i<n} (i mod 1024) = q·(1023·1024/2) + m(m − 1)/2 with n = 1024q + m.
        long n = CollectiveCheck.LargeCount, q = n / 1024, m = n % 1024;
        Assert.AreEqual(ones * (q * 1023 * 1024 / 2 + m * (m - 1) / 2), result.LargeTotal, $"large all-reduce total, {at}");
        CollectionAssert.AreEqual(CollectiveCheck.LargeSampleIndices.Select(i => (float)(ones * (i % 1024))).ToArray(), result.LargeSamples, $"large all-reduce samples, {at}");

        CollectionAssert.AreEqual(Enumerable.Range(0, size).SelectMany(p => new[] { p, 10f * p + 0.5f, -p }).ToArray(), result.Gathered, $"all-gather, {at}");
        CollectionAssert.AreEqual(new[] { 1.5f * size, -2f, 3.25f }, result.Broadcast, $"broadcast from rank {size - 1}, {at}");
        Assert.AreEqual(CollectiveCheck.Token, result.BroadcastText, $"byte broadcast from rank 0, {at}");

        CollectionAssert.AreEqual(Enumerable.Range(0, 12).Select(j => (float)(s * j + 100 * ranks)).ToArray(), result.TensorSum, $"tensor all-reduce, {at}");
        CollectionAssert.AreEqual(Enumerable.Range(0, 10).Select(k => k is >= 3 and < 7 ? (float)ones : rank + 1f).ToArray(), result.ViewBuffer,
            $"all-reduce of a view touches the view's elements only, {at}");
        CollectionAssert.AreEqual(Enumerable.Range(0, size).SelectMany(p => new[] { p, p + 0.5f }).ToArray(), result.GatheredTensor, $"tensor all-gather, {at}");
        CollectionAssert.AreEqual(new long[] { size, 2 }, result.GatheredShape, $"tensor all-gather shape, {at}");
        Assert.IsTrue(result.NullReferenceCaught, $"a caught NullReferenceException after MPI_Init, {at}");
    }
}
