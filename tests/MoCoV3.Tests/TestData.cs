using MoCoV3.Data;

namespace MoCoV3.Tests;

/// <summary>What tests need from the machine: fresh temporary folders, and the real Fashion-MNIST files.</summary>
internal static class TestData
{
    /// <summary>
    /// This test run's folder under the temp directory's <c>mocov3-tests/</c>: removed when the run ends
    /// (<see cref="TestRunCleanup"/>; a full run writes several GB of checkpoints and models), kept when the environment
    /// variable <c>MOCOV3_KEEP_TEST_FILES</c> is set.
    /// </summary>
    public static readonly string RunFolder =
        Path.Combine(Path.GetTempPath(), "mocov3-tests", $"run-{Environment.ProcessId}-{Guid.NewGuid():N}");

    /// <summary>A new empty folder in <see cref="RunFolder"/>.</summary>
    public static string NewFolder(string prefix = "")
    {
        string dir = Path.Combine(RunFolder, prefix + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        return dir;
    }

    /// <summary>
    /// Skips (inconclusive) a test that reads the real data when the Debian package is not installed. CI installs it
    /// (.ci/run, test.sh), so there these tests always run.
    /// </summary>
    public static void RequireFashionMnist()
    {
        if (!Directory.Exists(FashionMnist.DefaultFolder))
            Assert.Inconclusive($"{FashionMnist.DefaultFolder} is absent (apt-get install dataset-fashion-mnist)");
    }
}

/// <summary>Removes <see cref="TestData.RunFolder"/> when the test run ends.</summary>
[TestClass]
public sealed class TestRunCleanup
{
    [AssemblyCleanup]
    public static void RemoveTestFiles()
    {
        if (Environment.GetEnvironmentVariable("MOCOV3_KEEP_TEST_FILES") is { Length: > 0 }) return;
        try
        {
            if (Directory.Exists(TestData.RunFolder)) Directory.Delete(TestData.RunFolder, recursive: true);
        }
        catch (IOException)
        {
            // a file still open elsewhere: the temp directory's own cleanup removes it later
        }
        catch (UnauthorizedAccessException)
        {
        }
    }
}
