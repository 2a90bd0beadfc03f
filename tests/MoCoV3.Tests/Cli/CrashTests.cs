using MoCoV3.Checkpoints;
using System.Diagnostics;
using MoCoV3.Training;

namespace MoCoV3.Tests.Cli;

/// <summary>
/// The short CI version of <c>scripts/crash-test.sh</c>: the real <c>mocov3 pretrain</c> in a child process, killed with
/// SIGKILL (once at a random moment, once inside a checkpoint write) and stopped with SIGTERM, resumed each time.
/// </summary>
[TestClass]
public sealed class CrashTests
{
    public TestContext TestContext { get; set; } = null!;

    private const string Preset = """
        { "name": "crash", "arch": "vit", "image_size": 28, "channels": 1, "patch_size": 7, "embed_dim": 32, "depth": 2,
          "heads": 2, "hidden_dim": 1024, "out_dim": 64, "batch": 32, "epochs": 1, "warmup_epochs": 0.5, "base_lr": 1e-3,
          "mean": [0.286], "std": [0.353] }
        """;

    private static string[] Args(string dir, string preset) =>
        ["pretrain", "--preset", preset, "--limit", "512", "--max-steps", "60", "--log-every", "1", "--save-every", "3", "--seed", "7",
         "--threads", "1", "--out", dir, "--resume", "auto"];

    private static Process Start(string[] args)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "mocov3.dll"));
        foreach (var a in args) start.ArgumentList.Add(a);
        return Process.Start(start)!;
    }

    /// <summary>Steps logged so far (the last metrics row), or 0.</summary>
    private static long LastRow(string dir)
    {
        string path = Path.Combine(dir, "metrics.csv");
        try { return File.Exists(path) ? MetricsLog.Read(path).Select(r => r.Step).DefaultIfEmpty(0).Max() : 0; }
        catch (Exception e) when (e is IOException or InvalidDataException) { return 0; }
    }

    private static string[] WithoutTimings(string path) =>
        File.ReadAllLines(path).Select(l => string.Join(',', l.Split(',').Where((_, i) => i is not (6 or 7)))).ToArray();

    [TestMethod]
    public void KilledAndResumedRunEqualsAnUninterruptedOne()
    {
        TestData.RequireFashionMnist();
        string root = TestData.NewFolder();
        string preset = Path.Combine(root, "crash.json");
        File.WriteAllText(preset, Preset);
        string straight = Path.Combine(root, "straight"), killed = Path.Combine(root, "killed");
        var (code, _, error) = CliTests.Mocov3(Args(straight, preset));
        Assert.AreEqual(0, code, error);

        // Kill 1: once a few steps are logged. Kill 2: as soon as a checkpoint's temporary file exists (inside the write).
        string tmp = Path.Combine(killed, CheckpointFile.DefaultName + ".tmp");
        var clock = Stopwatch.StartNew();
        foreach (var insideWrite in new[] { false, true })
        {
            long before = LastRow(killed);
            using var process = Start(Args(killed, preset));
            var deadline = Stopwatch.StartNew();
            while (!process.HasExited && deadline.Elapsed < TimeSpan.FromSeconds(60)
                   && !(insideWrite ? File.Exists(tmp) && LastRow(killed) > before : LastRow(killed) >= before + 5))
                Thread.Yield();
            Assert.IsFalse(process.HasExited, "the run ended before it could be killed");
            bool writing = File.Exists(tmp);
            process.Kill(); // SIGKILL
            process.WaitForExit();
            TestContext.WriteLine($"killed at metrics row {LastRow(killed)}, temporary checkpoint present: {writing}");
            if (insideWrite) Assert.IsTrue(writing);
        }
        // A SIGTERM finishes the step, writes a checkpoint and says how to continue.
        using (var process = Start(Args(killed, preset)))
        {
            var stdout = process.StandardOutput.ReadToEndAsync();
            var stderr = process.StandardError.ReadToEndAsync();
            long before = LastRow(killed);
            var deadline = Stopwatch.StartNew();
            while (LastRow(killed) < before + 8 && !process.HasExited && deadline.Elapsed < TimeSpan.FromSeconds(60)) Thread.Sleep(10);
            Assert.IsFalse(process.HasExited, "the run ended before SIGTERM");
            using (var kill = Process.Start("kill", ["-TERM", process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)])) kill.WaitForExit();
            Assert.IsTrue(process.WaitForExit(TimeSpan.FromSeconds(60)), "no exit after SIGTERM");
            TestContext.WriteLine(stderr.Result);
            Assert.AreEqual(130, process.ExitCode, stderr.Result);
            StringAssert.Contains(stderr.Result, "SIGTERM: finishing this step and writing a checkpoint");
            StringAssert.Contains(stderr.Result, $"Continue with: mocov3 pretrain --preset {preset} --limit 512");
            StringAssert.Contains(stderr.Result, $"--out {killed} --resume auto");
            long stopped = CheckpointFile.ReadHeader(Path.Combine(killed, CheckpointFile.DefaultName)).Step;
            StringAssert.Contains(stderr.Result, $"stopped at step {stopped}");
            Assert.AreEqual(stopped, LastRow(killed), "the step SIGTERM stopped at has its checkpoint");
        }
        (code, var output, error) = CliTests.Mocov3(Args(killed, preset));
        Assert.AreEqual(0, code, error);
        StringAssert.Contains(output, "resumed from");
        Assert.IsFalse(File.Exists(tmp));
        TestContext.WriteLine($"kills and resumes took {clock.Elapsed.TotalSeconds:F1} s");
        CollectionAssert.AreEqual(WithoutTimings(Path.Combine(straight, "metrics.csv")), WithoutTimings(Path.Combine(killed, "metrics.csv")));
    }

    [TestMethod]
    public void ACheckpointThatCannotBeWrittenStopsWithExitCode3AndSaysWhy()
    {
        TestData.RequireFashionMnist();
        string root = TestData.NewFolder();
        string preset = Path.Combine(root, "crash.json");
        File.WriteAllText(preset, Preset);
        string dir = Path.Combine(root, "run");
        // A folder where the temporary checkpoint goes: opening it for writing fails, also for root (chmod would not).
        Directory.CreateDirectory(Path.Combine(dir, CheckpointFile.DefaultName + ".tmp"));
        var (code, _, error) = CliTests.Mocov3(Args(dir, preset));
        TestContext.WriteLine(error);
        Assert.AreEqual(3, code, error);
        StringAssert.StartsWith(error, "error: cannot write the checkpoint of step 3 to ");
        StringAssert.Contains(error, "No checkpoint was written yet");
        Assert.IsFalse(File.Exists(Path.Combine(dir, CheckpointFile.DefaultName)));
    }
}
