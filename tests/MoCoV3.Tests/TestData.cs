using MoCoV3.Data;

namespace MoCoV3.Tests;

/// <summary>What tests need from the machine: fresh temporary folders, and the real Fashion-MNIST files.</summary>
internal static class TestData
{
    /// <summary>A new empty folder under the temp directory's <c>mocov3-tests/</c>.</summary>
    public static string NewFolder(string prefix = "")
    {
        string dir = Path.Combine(Path.GetTempPath(), "mocov3-tests", prefix + Guid.NewGuid().ToString("N"));
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
