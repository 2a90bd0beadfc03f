using MoCoV3.Distributed;

namespace MoCoV3.Tests.Distributed;

/// <summary><see cref="RankTimeout"/>: the option, 0 for none, the default, and the refusal of a negative value.</summary>
[TestClass]
public sealed class RankTimeoutTests
{
    [TestMethod]
    public void TheOptionGivesTheTimeoutAndZeroWaitsForever()
    {
        Assert.AreEqual(TimeSpan.FromSeconds(7.5), RankTimeout.Resolve(7.5));
        Assert.IsNull(RankTimeout.Resolve(0));
        if (Environment.GetEnvironmentVariable(RankTimeout.EnvironmentVariable) is null)
            Assert.AreEqual(TimeSpan.FromSeconds(RankTimeout.DefaultSeconds), RankTimeout.Resolve(null));
        var e = Assert.ThrowsExactly<ArgumentException>(() => RankTimeout.Resolve(-1));
        StringAssert.Contains(e.Message, "--rank-timeout must be a number of seconds ≥ 0 (0: wait forever), got -1");
    }

    [TestMethod]
    public void TheCliRefusesANegativeRankTimeoutAndABadEnvironmentValue()
    {
        string dir = TestData.NewFolder();
        string[] args = ["pretrain", "--preset", "vit-tiny-fmnist", "--max-steps", "1", "--out", dir];
        var negative = MpiRun.Mocov3(null, 1, [.. args, "--rank-timeout", "-3"]);
        Assert.AreEqual(2, negative.Code, negative.Out);
        StringAssert.Contains(negative.Err, "error: --rank-timeout must be a number of seconds ≥ 0 (0: wait forever), got -3");
        var environment = MpiRun.Mocov3(null, 1, args, new Dictionary<string, string?> { [RankTimeout.EnvironmentVariable] = "soon" });
        Assert.AreEqual(2, environment.Code, environment.Out);
        StringAssert.Contains(environment.Err, $"error: {RankTimeout.EnvironmentVariable}='soon' is not a number of seconds ≥ 0 (0: wait forever)");
        Assert.IsFalse(File.Exists(Path.Combine(dir, "metrics.csv")));
    }
}
