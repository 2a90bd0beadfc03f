using MoCoV3.Distributed;

namespace MoCoV3.Tests.Distributed;

/// <summary>Every collective at 1, 2 and 4 ranks under Open MPI's and MPICH's own launchers, and without a launcher.</summary>
[TestClass]
public sealed class MpiCollectiveTests
{
    [TestMethod]
    [DataRow(MpiFlavour.OpenMpi, 1)]
    [DataRow(MpiFlavour.OpenMpi, 2)]
    [DataRow(MpiFlavour.OpenMpi, 4)]
    [DataRow(MpiFlavour.Mpich, 1)]
    [DataRow(MpiFlavour.Mpich, 2)]
    [DataRow(MpiFlavour.Mpich, 4)]
    public void CollectivesUnderTheLauncherGiveTheHandComputedValues(MpiFlavour flavour, int ranks)
    {
        var results = MpiRun.Check(flavour, ranks);
        for (int r = 0; r < ranks; r++)
        {
            CollectiveExpectations.Verify(results[r], r, ranks);
            Assert.AreEqual(flavour == MpiFlavour.OpenMpi ? "OpenMpi" : "Mpich", results[r].Launcher, "launcher detected from the environment");
            Assert.AreEqual(r, results[r].LocalRank, "one host: the local rank is the rank");
            StringAssert.Contains(results[r].Communicator, flavour == MpiFlavour.OpenMpi ? "Open MPI" : "MPICH");
        }
    }

    [TestMethod]
    [DataRow(MpiFlavour.OpenMpi)]
    [DataRow(MpiFlavour.Mpich)]
    public void WithoutALauncherMpiIsAWorldOfOneRank(MpiFlavour flavour)
    {
        MpiRun.RequireLauncher(flavour);   // the runtime is installed
        string library = flavour == MpiFlavour.OpenMpi ? MpiLibraryLocator.OpenMpiLibrary : MpiLibraryLocator.MpichLibrary;
        var result = MpiRun.Check(null, 1, null, "--mpi-library", library).Single();
        CollectiveExpectations.Verify(result, 0, 1);
        Assert.AreEqual("None", result.Launcher);
        StringAssert.Contains(result.Communicator, library);
    }

    [TestMethod]
    public void MpichKeepsDotNetNullReferencesCatchableWithoutUcxSettings()
    {
        // The library sets UCX_ERROR_SIGNALS empty itself before loading MPICH; with UCX's default a caught
        // NullReferenceException aborts the rank.
        var results = MpiRun.Check(MpiFlavour.Mpich, 2, new Dictionary<string, string?> { ["UCX_ERROR_SIGNALS"] = null });
        Assert.IsTrue(results.All(r => r.NullReferenceCaught));
    }

    [TestMethod]
    public void UcxTakingSegmentationFaultsAbortsTheRank()
    {
        // The control of the test above: with UCX handling SIGSEGV, the same check cannot pass.
        var outcome = MpiRun.Mocov3(MpiFlavour.Mpich, 1, ["mpi", "check"], new Dictionary<string, string?> { ["UCX_ERROR_SIGNALS"] = "SIGSEGV" });
        Assert.AreNotEqual(0, outcome.Code);
        Assert.IsFalse(outcome.Out.Contains("\"nullReferenceCaught\":true", StringComparison.Ordinal), outcome.Out);
    }

    [TestMethod]
    public void AnMpiLibraryThatIsNotTheLaunchersFailsNamingBoth()
    {
        var outcome = MpiRun.Mocov3(MpiFlavour.OpenMpi, 2, ["mpi", "check", "--mpi-library", MpiLibraryLocator.MpichLibrary]);
        Assert.AreNotEqual(0, outcome.Code);
        StringAssert.Contains(outcome.Err, "started 2 processes");
        StringAssert.Contains(outcome.Err, MpiLibraryLocator.MpichLibrary);
    }

    [TestMethod]
    public void AllReduceBenchmarkReportsTheBytesOfTheBuffer()
    {
        var outcome = MpiRun.Mocov3(MpiFlavour.OpenMpi, 2, ["mpi", "bench", "--floats", "1000000", "--repeats", "3", "--json"]);
        Assert.AreEqual(0, outcome.Code, outcome.Err);
        var line = outcome.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries).Single(l => l.StartsWith('{'));
        var result = System.Text.Json.JsonSerializer.Deserialize<AllReduceBenchmark.Result>(line, new System.Text.Json.JsonSerializerOptions { PropertyNameCaseInsensitive = true })!;
        Assert.AreEqual(2, result.Ranks);
        Assert.AreEqual(4_000_000L, result.Bytes);
        Assert.IsTrue(result.AllReduceSecondsMin > 0 && result.AllReduceSecondsMin <= result.AllReduceSecondsMedian);
        Assert.AreEqual(result.Bytes / result.AllReduceSecondsMedian / 1e9, result.AlgorithmGigabytesPerSecond, 1e-9);
        Assert.AreEqual(result.AlgorithmGigabytesPerSecond, result.BusGigabytesPerSecond, 1e-9, "ring all-reduce over 2 ranks: bus = algorithm · 2·1/2");
    }
}
