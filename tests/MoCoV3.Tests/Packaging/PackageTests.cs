using System.Diagnostics;

namespace MoCoV3.Tests.Packaging;

/// <summary>
/// The repository as a user outside it meets it: <c>scripts/package-check.sh</c> packs every package into a temporary
/// folder, builds and runs each sample from a copy outside the repository against those packages, publishes EmbedApp
/// (≤ 60 MiB, no libtorch), and installs the <c>mocov3</c> tool into a tool path and runs it.
/// </summary>
[TestClass]
public sealed class PackageTests
{
    [TestMethod]
    [Timeout(25 * 60 * 1000)]
    public void PackedLibrariesSamplesAndToolWorkOutsideTheRepository()
    {
        TestData.RequireFashionMnist();
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "MoCoV3.sln"))) dir = dir.Parent;
        Assert.IsNotNull(dir, "repository root not found above " + AppContext.BaseDirectory);
        string work = TestData.NewFolder("package-check-");

        var start = new ProcessStartInfo("bash") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.ArgumentList.Add(Path.Combine(dir.FullName, "scripts", "package-check.sh"));
        start.ArgumentList.Add(work);
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        process.WaitForExit();
        string output = stdout.Result + "\n" + stderr.Result;
        Console.WriteLine(output);
        Assert.AreEqual(0, process.ExitCode, output);
        StringAssert.Contains(stdout.Result, "package-check: passed");

        // What the script measured: EmbedApp's framework-dependent publish folder.
        var size = stdout.Result.Split('\n').Single(l => l.StartsWith("EMBEDAPP_PUBLISH_BYTES=", StringComparison.Ordinal));
        long bytes = long.Parse(size["EMBEDAPP_PUBLISH_BYTES=".Length..]);
        Assert.IsLessThanOrEqualTo(60L * 1024 * 1024, bytes, $"EmbedApp publish: {bytes / 1e6:F1} MB");
        Assert.IsFalse(Directory.EnumerateFiles(Path.Combine(work, "embedapp-publish")).Any(f => f.Contains("torch", StringComparison.OrdinalIgnoreCase)));
    }
}
