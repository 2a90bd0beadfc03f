using MoCoV3.Evaluation;
using static TorchSharp.torch;

namespace MoCoV3.Tests.Eval;

[TestClass]
public sealed class KnnTests
{
    /// <summary>Unit vectors in the plane at the given angles (degrees), flattened [n × 2].</summary>
    private static float[] AtAngles(params double[] degrees) =>
        degrees.SelectMany(d => new[] { (float)Math.Cos(d * Math.PI / 180), (float)Math.Sin(d * Math.PI / 180) }).ToArray();

    [TestMethod]
    public void SeparableClustersAreClassifiedExactly()
    {
        const int classes = 6, dim = 16;
        var random = new Random(3);
        // Class c lives around the basis vector e_c (scaled, so normalisation matters), with noise well below the gap.
        float[] Cluster(int n, out long[] labels)
        {
            labels = new long[n];
            var values = new float[n * dim];
            for (int i = 0; i < n; i++)
            {
                labels[i] = i % classes;
                float scale = 0.5f + (float)random.NextDouble() * 3;
                for (int j = 0; j < dim; j++)
                    values[i * dim + j] = scale * ((j == labels[i] ? 1f : 0f) + 0.2f * (float)(random.NextDouble() - 0.5));
            }
            return values;
        }
        var bank = Cluster(300, out var bankLabels);
        var queries = Cluster(120, out var queryLabels);
        using var knn = KnnClassifier.FromArrays(bank, bankLabels, dim, classes);
        var result = knn.Evaluate(queries, queryLabels);
        Assert.AreEqual(1.0, result.Top1);
        Assert.AreEqual(1.0, result.Top5);
        Assert.AreEqual((300, 120, 20, 0.07), (result.Train, result.Test, result.K, result.Temperature));
    }

    [TestMethod]
    public void VotesAreWeightedByExpSimilarityOverTemperature()
    {
        // Query at 0°: neighbour of class 0 at 0° (cos 1), two of class 1 at ±60° (cos 0.5), one of class 2 at 90° (cos 0).
        float[] bank = AtAngles(0, 60, -60, 90);
        long[] labels = [0, 1, 1, 2];
        float[] query = AtAngles(0);
        using var queryTensor = tensor(query, [1, 2]);

        // k = 3: class 2 is not among the neighbours.
        using (var knn = KnnClassifier.FromArrays(bank, labels, 2, classes: 3, k: 3, temperature: 1.0))
        {
            using var scores = knn.Scores(queryTensor);
            var s = scores.data<float>().ToArray();
            Assert.AreEqual(Math.E, s[0], 1e-5);
            Assert.AreEqual(2 * Math.Exp(0.5), s[1], 1e-5);
            Assert.AreEqual(0, s[2]);
            // Two weaker neighbours outvote one close one at T = 1 …
            Assert.AreEqual(0.0, knn.Evaluate(query, [0]).Top1);
            Assert.AreEqual(1.0, knn.Evaluate(query, [1]).Top1);
        }
        // … but not at T = 0.1: e^10 > 2e^5.
        using (var knn = KnnClassifier.FromArrays(bank, labels, 2, classes: 3, k: 3, temperature: 0.1))
        {
            Assert.AreEqual(1.0, knn.Evaluate(query, [0]).Top1);
            Assert.AreEqual(0.0, knn.Evaluate(query, [1]).Top1);
        }
        // k = 4 adds class 2 with weight e^(0/T) = 1; k larger than the bank uses the whole bank.
        using (var knn = KnnClassifier.FromArrays(bank, labels, 2, classes: 3, k: 50, temperature: 1.0))
        {
            Assert.AreEqual(4, knn.K);
            using var scores = knn.Scores(queryTensor);
            Assert.AreEqual(1.0, scores.data<float>()[2], 1e-6);
        }
    }

    [TestMethod]
    public void TopFiveCountsTheTrueClassAmongTheFiveBestScores()
    {
        // One bank image per class at 0°, 20°, …, 100°: for a query at 0° the scores fall strictly with the class.
        float[] bank = AtAngles(0, 20, 40, 60, 80, 100);
        long[] labels = [0, 1, 2, 3, 4, 5];
        using var knn = KnnClassifier.FromArrays(bank, labels, 2, classes: 6, k: 6, temperature: 0.1);
        float[] queries = AtAngles(0, 0, 0);
        var result = knn.Evaluate(queries, [0, 4, 5]);
        Assert.AreEqual(1 / 3.0, result.Top1, 1e-12, "only the first query's class is the best");
        Assert.AreEqual(2 / 3.0, result.Top5, 1e-12, "class 4 is 5th (a top-5 hit), class 5 is 6th (a miss)");
    }

    [TestMethod]
    public void ChunkedQueriesGiveTheSameScores()
    {
        using var bank = randn(500, 8);
        using var labels = randint(0, 7, [500]);
        using var queries = randn(103, 8);
        using var whole = new KnnClassifier(bank, labels, 7);
        using var chunked = new KnnClassifier(bank, labels, 7) { QueryChunk = 10 };
        using var a = whole.Scores(queries);
        using var b = chunked.Scores(queries);
        // Only the rounding of the matmul differs (scores reach e^(1/0.07) ≈ 1.6e6 in float32).
        Assert.IsTrue(a.allclose(b, rtol: 1e-4, atol: 1e-3));
        Assert.IsTrue(a.sum(1).gt(0).all().item<bool>(), "every query has votes");
    }

    [TestMethod]
    public void BadInputIsRefusedWithTheReason()
    {
        var e = Assert.ThrowsExactly<ArgumentException>(() => KnnClassifier.FromArrays(AtAngles(0, 90), [0, 3], 2, classes: 3));
        StringAssert.Contains(e.Message, "labels in [0, 3)");
        e = Assert.ThrowsExactly<ArgumentException>(() => KnnClassifier.FromArrays(AtAngles(0, 90), [0, 1], 3, classes: 3));
        StringAssert.Contains(e.Message, "2 embeddings of 3 values");
        using var knn = KnnClassifier.FromArrays(AtAngles(0, 90), [0, 1], 2, classes: 2);
        e = Assert.ThrowsExactly<ArgumentException>(() => knn.Evaluate(new float[3], [0]));
        StringAssert.Contains(e.Message, "1 embeddings of 2 values");
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => KnnClassifier.FromArrays(AtAngles(0), [0], 2, classes: 1, k: 0));
    }

    [TestMethod]
    public void SubsetsAreSpreadEvenlyAndHeldOutOfASingleSource()
    {
        CollectionAssert.AreEqual(new[] { 0, 2, 5, 7 }, KnnSubsets.Spread(10, 4));
        CollectionAssert.AreEqual(Enumerable.Range(0, 3).ToArray(), KnnSubsets.Spread(3, 10));

        // A class-sorted dataset: the first 400 images would be classes 0 and 1 only; spread subsets see all four.
        var sorted = Dataset("sorted", Enumerable.Range(0, 1000).Select(i => i / 250).ToArray());
        var test = Dataset("test", Enumerable.Range(0, 100).Select(i => i % 4).ToArray());
        var split = KnnSubsets.Choose(sorted, test, 400, 1000);
        Assert.IsFalse(split.HeldOut);
        Assert.AreEqual(400, split.Train.Length);
        Assert.AreEqual(100, split.Test.Length);
        CollectionAssert.AreEquivalent(new[] { 0, 1, 2, 3 }, split.Train.Select(i => i / 250).Distinct().ToArray());

        // One source for both splits: the queries (at most a fifth) are not in the bank.
        var held = KnnSubsets.Choose(sorted, sorted, 10000, 2000);
        Assert.IsTrue(held.HeldOut);
        Assert.AreEqual(200, held.Test.Length);
        Assert.AreEqual(800, held.Train.Length);
        Assert.IsFalse(held.Train.Intersect(held.Test).Any());

        var other = new MoCoV3.Data.InMemoryImageDataset("other", new byte[4], [0, 1, 0, 1], 1, 1, 1, ["a", "b"]);
        var e = Assert.ThrowsExactly<ArgumentException>(() => KnnSubsets.Choose(sorted, other, 10, 10));
        StringAssert.Contains(e.Message, "other: the test split's classes (a, b)");
    }

    private static MoCoV3.Data.InMemoryImageDataset Dataset(string name, int[] labels) =>
        new(name, new byte[labels.Length], labels, 1, 1, 1, ["c0", "c1", "c2", "c3"]);
}
