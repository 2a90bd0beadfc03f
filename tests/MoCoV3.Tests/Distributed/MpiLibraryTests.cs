using MoCoV3.Distributed;

namespace MoCoV3.Tests.Distributed;

/// <summary>Which MPI library is loaded, and the error when none can be (nothing here initialises MPI in the test process).</summary>
[TestClass]
public sealed class MpiLibraryTests
{
    [TestMethod]
    public void TheLaunchersOwnLibraryIsChosen()
    {
        if (Environment.GetEnvironmentVariable(MpiLibraryLocator.EnvironmentVariable) is not null)
            Assert.Inconclusive($"{MpiLibraryLocator.EnvironmentVariable} is set in this environment");
        CollectionAssert.AreEqual(new[] { "libmpi.so.40" }, MpiLibraryLocator.Candidates(null, Launcher.OpenMpi).ToArray());
        CollectionAssert.AreEqual(new[] { "libmpich.so.12" }, MpiLibraryLocator.Candidates(null, Launcher.Mpich).ToArray());
        CollectionAssert.AreEqual(new[] { "libmpi.so.40", "libmpich.so.12" }, MpiLibraryLocator.Candidates(null, Launcher.None).ToArray());
        CollectionAssert.AreEqual(new[] { "/opt/mpi/lib/libmpi.so" }, MpiLibraryLocator.Candidates("/opt/mpi/lib/libmpi.so", Launcher.Mpich).ToArray());
    }

    [TestMethod]
    public void AMissingLibraryIsAnErrorNamingItAndHowToInstall()
    {
        var e = Assert.ThrowsExactly<InvalidOperationException>(() => MpiNative.Load(["/nonexistent/libmpi.so.40", MpiLibraryLocator.MpichLibrary + ".missing"]));
        StringAssert.Contains(e.Message, "/nonexistent/libmpi.so.40");
        StringAssert.Contains(e.Message, MpiLibraryLocator.MpichLibrary + ".missing");

        var hint = Assert.ThrowsExactly<InvalidOperationException>(() => MpiNative.Load(["/nonexistent/" + MpiLibraryLocator.OpenMpiLibrary]));
        StringAssert.Contains(hint.Message, MpiLibraryLocator.EnvironmentVariable);
        StringAssert.Contains(MpiLibraryLocator.InstallHint([MpiLibraryLocator.OpenMpiLibrary, MpiLibraryLocator.MpichLibrary]), "apt-get install openmpi-bin");
        StringAssert.Contains(MpiLibraryLocator.InstallHint([MpiLibraryLocator.OpenMpiLibrary, MpiLibraryLocator.MpichLibrary]), "apt-get install mpich");
    }

    [TestMethod]
    public void ALibraryThatIsNotMpiIsAnErrorNamingTheMissingFunction()
    {
        var e = Assert.ThrowsExactly<InvalidOperationException>(() => MpiNative.Load(["libz.so.1"]));
        StringAssert.Contains(e.Message, "libz.so.1 does not export MPI_Get_library_version");
    }
}
