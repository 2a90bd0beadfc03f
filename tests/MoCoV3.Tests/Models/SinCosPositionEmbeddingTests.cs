using MoCoV3.Models;

namespace MoCoV3.Tests.Models;

[TestClass]
public sealed class SinCosPositionEmbeddingTests
{
    [TestMethod]
    public void FollowsTheOfficialRowColumnConvention()
    {
        // 2x3 grid, D = 8 → pos_dim 2, ω = [1, 1/100].
        using var pe = SinCosPositionEmbedding.Build(2, 3, 8);
        CollectionAssert.AreEqual(new long[] { 1, 7, 8 }, pe.shape);
        var table = pe.data<float>().ToArray();
        Assert.IsTrue(table.Take(8).All(v => v == 0f), "class-token slot must be zero");

        // Token k = 5 is row 1, column 2 (row-major, 3 columns).
        double[] omega = [1.0, 0.01];
        double r = 1, c = 2;
        double[] expected =
        [
            Math.Sin(r * omega[0]), Math.Sin(r * omega[1]), Math.Cos(r * omega[0]), Math.Cos(r * omega[1]),
            Math.Sin(c * omega[0]), Math.Sin(c * omega[1]), Math.Cos(c * omega[0]), Math.Cos(c * omega[1]),
        ];
        var token5 = table.Skip((1 + 5) * 8).Take(8).ToArray();
        for (int i = 0; i < 8; i++) Assert.AreEqual(expected[i], token5[i], 1e-6, $"dim {i}");
    }
}
