using MoCoV3.Distributed;

namespace MoCoV3.Tests.Distributed;

[TestClass]
public sealed class LaunchEnvironmentTests
{
    [TestMethod]
    public void NoLauncherVariablesIsOneProcess()
    {
        Assert.AreEqual(LaunchEnvironment.SingleProcess, LaunchEnvironment.Detect(new Dictionary<string, string> { ["HOME"] = "/root" }));
    }

    [TestMethod]
    public void OpenMpiVariablesGiveRankSizeAndLocalRank()
    {
        var launch = LaunchEnvironment.Detect(new Dictionary<string, string>
        {
            ["OMPI_COMM_WORLD_RANK"] = "5", ["OMPI_COMM_WORLD_SIZE"] = "8", ["OMPI_COMM_WORLD_LOCAL_RANK"] = "1",
            ["PMI_RANK"] = "0", ["PMI_SIZE"] = "1",   // Open MPI's own variables win (Slurm may set PMI's too)
        });
        Assert.AreEqual(new LaunchEnvironment(Launcher.OpenMpi, 5, 8, 1), launch);
    }

    [TestMethod]
    public void HydraVariablesGiveMpich()
    {
        var launch = LaunchEnvironment.Detect(new Dictionary<string, string> { ["PMI_RANK"] = "3", ["PMI_SIZE"] = "4", ["MPI_LOCALRANKID"] = "0" });
        Assert.AreEqual(new LaunchEnvironment(Launcher.Mpich, 3, 4, 0), launch);
    }

    [TestMethod]
    public void TorchrunVariablesAreDetected()
    {
        var launch = LaunchEnvironment.Detect(new Dictionary<string, string>
        {
            ["RANK"] = "2", ["WORLD_SIZE"] = "16", ["LOCAL_RANK"] = "2", ["MASTER_ADDR"] = "10.0.0.1", ["MASTER_PORT"] = "29500",
        });
        Assert.AreEqual(new LaunchEnvironment(Launcher.Torchrun, 2, 16, 2), launch);
    }

    [TestMethod]
    public void ARankOutsideTheWorldIsAnErrorNamingTheVariables()
    {
        var e = Assert.ThrowsExactly<InvalidOperationException>(() =>
            LaunchEnvironment.Detect(new Dictionary<string, string> { ["PMI_RANK"] = "4", ["PMI_SIZE"] = "4" }));
        StringAssert.Contains(e.Message, "PMI_RANK=4");
        StringAssert.Contains(e.Message, "PMI_SIZE=4");
    }

    [TestMethod]
    public void ANonNumericRankIsAnErrorNamingTheValue()
    {
        var e = Assert.ThrowsExactly<InvalidOperationException>(() =>
            LaunchEnvironment.Detect(new Dictionary<string, string> { ["OMPI_COMM_WORLD_RANK"] = "one", ["OMPI_COMM_WORLD_SIZE"] = "2" }));
        StringAssert.Contains(e.Message, "OMPI_COMM_WORLD_RANK='one'");
    }

    [TestMethod]
    public void AMissingWorldSizeIsAnErrorNamingIt()
    {
        var e = Assert.ThrowsExactly<InvalidOperationException>(() =>
            LaunchEnvironment.Detect(new Dictionary<string, string> { ["OMPI_COMM_WORLD_RANK"] = "0" }));
        StringAssert.Contains(e.Message, "OMPI_COMM_WORLD_SIZE is not set");
    }
}
