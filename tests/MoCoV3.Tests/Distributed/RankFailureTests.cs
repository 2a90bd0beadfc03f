using System.Diagnostics;
using System.Text.RegularExpressions;
using MoCoV3.Checkpoints;
using MoCoV3.Distributed;
using MoCoV3.Training;
using MoCoV3.Tests.Eval;
using static MoCoV3.Tests.Distributed.RunWeights;

namespace MoCoV3.Tests.Distributed;

/// <summary>
/// A rank that dies or hangs in the middle of a data-parallel <c>mocov3 pretrain</c> (2 or 3 ranks, micro ViT, global batch
/// 16 or 24, a checkpoint every 4 steps): the whole job ends within a bounded time with an error naming the rank, the
/// last checkpoint stays readable, and <c>--resume auto</c> ends where an uninterrupted run ends.
/// </summary>
[TestClass]
public sealed class RankFailureTests
{
    public TestContext TestContext { get; set; } = null!;

    private const int Steps = 20; // 16 steps per epoch at batch 16: the resumed run crosses an epoch
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(60);

    /// <summary>
    /// SIGKILL to rank 1 after step 6: Open MPI's mpirun ends rank 0 and exits non-zero naming rank 1; the resumed run's
    /// per-step losses and final weights are the uninterrupted run's.
    /// </summary>
    [TestMethod]
    public void OpenMpiARankKilledMidRunEndsTheJobAndResumeAutoEndsWhereAnUninterruptedRunEnds()
    {
        TestData.RequireFashionMnist();
        string root = TestData.NewFolder("rank-kill-");
        string preset = EvalTestModels.PresetFile(TestPresets.MicroVit, root);
        string reference = Path.Combine(root, "uninterrupted"), killed = Path.Combine(root, "killed");

        var whole = MpiRun.Mocov3(MpiFlavour.OpenMpi, 2, Args(preset, reference, batch: 16));
        Assert.AreEqual(0, whole.Code, $"{whole.Err}\n{whole.Out}");
        // Rank 0 reports each rank's time in collectives: a share of the run between 0 and 100%, for both ranks.
        var communication = System.Text.RegularExpressions.Regex.Match(whole.Out,
            @"time in collectives \(communication and waiting for the other ranks\) over (\d+) steps of ([\d.]+) s: rank 0 ([\d.]+) s/step \(([\d.]+)%\), rank 1 ([\d.]+) s/step \(([\d.]+)%\)");
        Assert.IsTrue(communication.Success, whole.Out);
        Assert.AreEqual($"{Steps}", communication.Groups[1].Value);
        double stepSeconds = double.Parse(communication.Groups[2].Value, System.Globalization.CultureInfo.InvariantCulture);
        foreach (int g in new[] { 3, 5 })
        {
            double perStep = double.Parse(communication.Groups[g].Value, System.Globalization.CultureInfo.InvariantCulture);
            double share = double.Parse(communication.Groups[g + 1].Value, System.Globalization.CultureInfo.InvariantCulture);
            Assert.IsTrue(perStep > 0 && perStep < stepSeconds * 1.1, $"{perStep} s of a {stepSeconds} s step");
            Assert.IsTrue(share > 0 && share < 100, $"{share}%");
        }

        var job = KillRankOne(MpiFlavour.OpenMpi, 2, Args(preset, killed, batch: 16), MpiJob.SigKill, killed);
        long killedAfter = MpiJob.LastStep(Path.Combine(killed, "metrics.csv"));
        Assert.IsTrue(killedAfter < Steps, $"the run ended (step {killedAfter}) before rank 1 was killed");
        StringAssert.Contains(job.Err, "process rank 1 with PID", "Open MPI's mpirun names the dead rank");
        StringAssert.Contains(job.Err, "exited on signal 9 (Killed)");
        long saved = CheckpointFile.ReadHeader(Path.Combine(killed, CheckpointFile.DefaultName)).Step;
        Assert.IsTrue(saved >= 4 && saved < Steps && saved % 4 == 0, $"the checkpoint left holds step {saved}");

        var resumed = MpiRun.Mocov3(MpiFlavour.OpenMpi, 2, [.. Args(preset, killed, batch: 16), "--resume", "auto"]);
        Assert.AreEqual(0, resumed.Code, $"{resumed.Err}\n{resumed.Out}");
        StringAssert.Contains(resumed.Out, $"at step {saved} ");
        StringAssert.Contains(resumed.Out, $"done: {Steps} steps");

        var expected = MetricsLog.Read(Path.Combine(reference, "metrics.csv"));
        var actual = MetricsLog.Read(Path.Combine(killed, "metrics.csv"));
        CollectionAssert.AreEqual(expected.Select(r => r.Step).ToList(), actual.Select(r => r.Step).ToList(), "one row per step, the killed run's rows after its checkpoint dropped");
        double lossDiff = expected.Zip(actual).Max(p => Math.Abs(p.Second.Loss - p.First.Loss) / p.First.Loss);
        using var a = Load(reference);
        using var b = Load(killed);
        double scale = MaxAbs(a, Parameters), weightDiff = MaxDiff(a, b, Parameters), bufferDiff = MaxDiff(a, b, Buffers);
        TestContext.WriteLine($"rank 1 killed after step {killedAfter}: job ended in {job.Seconds:F1} s, code {job.ExitCode}; " +
                              $"resumed from step {saved}: loss rel diff {lossDiff:E1} (last {actual[^1].Loss:F5} vs {expected[^1].Loss:F5}), " +
                              $"max|Δw| {weightDiff:E1} (max|w| {scale:F3}), buffers max|Δ| {bufferDiff:E1}");
        Assert.IsTrue(lossDiff <= 1e-6, $"per-step loss relative difference {lossDiff:E2}");
        Assert.IsTrue(weightDiff <= 1e-6 * scale, $"max|Δw| {weightDiff:E2} > 1e-6 · {scale:F3}");
        Assert.IsTrue(bufferDiff <= 1e-6 * MaxAbs(a, Buffers), $"running statistics max|Δ| {bufferDiff:E2}");
        Assert.IsTrue(Math.Abs(expected[^1].Loss - expected[0].Loss) > 0.1, "the runs trained");
    }

    /// <summary>
    /// SIGSTOP to rank 1 of 3 after step 6, --rank-timeout 5: a waiting rank ends the job with exit code 124 and an error
    /// that names rank 1 as not answering and the other waiting rank as answering; the checkpoint stays readable.
    /// </summary>
    [TestMethod]
    public void OpenMpiARankStoppedMidRunEndsTheJobAfterTheRankTimeoutNamingIt() => StoppedRank(MpiFlavour.OpenMpi);

    /// <summary>
    /// SIGTERM to rank 1 alone (a signal reaches the ranks one by one): every rank stops after the same step, rank 0
    /// writes the checkpoint of that step and prints how to continue, and the job exits 130 (before, rank 1 stopped alone
    /// and rank 0 waited for it in the next step's collective).
    /// </summary>
    [TestMethod]
    public void OpenMpiSigtermToOneRankStopsEveryRankAtTheSameStepWithItsCheckpoint()
    {
        TestData.RequireFashionMnist();
        string root = TestData.NewFolder("rank-term-");
        string preset = EvalTestModels.PresetFile(TestPresets.MicroVit, root);
        var job = KillRankOne(MpiFlavour.OpenMpi, 2, Args(preset, root, batch: 16), signal: 15, root);
        TestContext.WriteLine($"rank 1 got SIGTERM: job ended in {job.Seconds:F1} s, code {job.ExitCode}\n{job.Err}");
        Assert.AreEqual(130, job.ExitCode);
        var stopped = Regex.Match(job.Err, @"stopped at step (\d+); checkpoint .*checkpoint\.ckpt\. Continue with: mocov3 pretrain .* --resume auto");
        Assert.IsTrue(stopped.Success, job.Err);
        long step = long.Parse(stopped.Groups[1].Value);
        Assert.IsTrue(step >= 6 && step < Steps, $"stopped at step {step}");
        Assert.AreEqual(step, CheckpointFile.ReadHeader(Path.Combine(root, CheckpointFile.DefaultName)).Step, "the checkpoint of the step every rank stopped at");
        Assert.AreEqual(step, MpiJob.LastStep(Path.Combine(root, "metrics.csv")));
    }

    /// <summary>
    /// Rank 1 of 2 fails on its own before the first collective (its --data does not exist): it ends the whole job at once
    /// with its error (before, it waited in MPI_Finalize and rank 0 in the first broadcast, forever, under both launchers).
    /// </summary>
    [TestMethod]
    [DataRow(MpiFlavour.OpenMpi)]
    [DataRow(MpiFlavour.Mpich)]
    public void ARankThatFailsAloneEndsTheJobAtOnce(MpiFlavour flavour)
    {
        TestData.RequireFashionMnist();
        string root = TestData.NewFolder("rank-fails-");
        string preset = EvalTestModels.PresetFile(TestPresets.MicroVit, root), missing = Path.Combine(root, "missing");
        string[] args = Args(preset, root, batch: 16);
        using var job = MpiJob.Start(MpiRun.PerRankStartInfo(flavour, [args, [.. args, "--data", missing]]));
        var clock = Stopwatch.StartNew();
        Assert.IsTrue(job.WaitForExit(Bound), $"the job still runs after {Bound.TotalSeconds} s");
        TestContext.WriteLine($"{flavour}: ended in {clock.Elapsed.TotalSeconds:F1} s, code {job.ExitCode}\n{job.Err}");
        Assert.AreEqual(2, job.ExitCode, "the failing rank's exit code (bad input)");
        StringAssert.Contains(job.Err, $"error: rank 1 of 2: Dataset path not found: {missing}; ending the job (MPI_Abort)");
        Assert.IsFalse(File.Exists(Path.Combine(root, "metrics.csv")), "nothing was trained");
    }

    /// <summary>The same under MPICH's launcher.</summary>
    [TestMethod]
    public void MpichARankStoppedMidRunEndsTheJobAfterTheRankTimeoutNamingIt() => StoppedRank(MpiFlavour.Mpich);

    /// <summary>SIGKILL to rank 1 under MPICH: Hydra ends the job and names the dead process's pid, which rank 0's log reads back to rank 1.</summary>
    [TestMethod]
    public void MpichARankKilledMidRunEndsTheJobAndTheLogNamesItsRank()
    {
        TestData.RequireFashionMnist();
        string root = TestData.NewFolder("rank-kill-mpich-");
        string preset = EvalTestModels.PresetFile(TestPresets.MicroVit, root);
        var job = KillRankOne(MpiFlavour.Mpich, 2, Args(preset, root, batch: 16), MpiJob.SigKill, root);
        int victim = job.Victim;
        TestContext.WriteLine($"MPICH, rank 1 (pid {victim}) killed: job ended in {job.Seconds:F1} s, code {job.ExitCode}");
        StringAssert.Contains(job.Out, $"rank 1: pid {victim} on ", "rank 0 logs every rank's pid");
        StringAssert.Contains(job.Out, $"PID {victim} RUNNING AT", "Hydra names the dead process");
        Assert.IsTrue(CheckpointFile.ReadHeader(Path.Combine(root, CheckpointFile.DefaultName)).Step >= 4);
    }

    private void StoppedRank(MpiFlavour flavour)
    {
        TestData.RequireFashionMnist();
        string root = TestData.NewFolder("rank-stop-");
        string preset = EvalTestModels.PresetFile(TestPresets.MicroVit, root);
        var job = KillRankOne(flavour, 3, [.. Args(preset, root, batch: 24), "--rank-timeout", "5"], MpiJob.SigStop, root);
        TestContext.WriteLine($"{flavour}, rank 1 of 3 stopped: job ended in {job.Seconds:F1} s, code {job.ExitCode}\n{job.Err}");
        Assert.IsTrue(job.Seconds >= 5, $"the job ended after {job.Seconds:F1} s, before the rank timeout");
        Assert.AreEqual(RankTimeout.ExitCode, job.ExitCode);
        var error = Regex.Match(job.Err, @"error: rank (0|2) waited \d+ s in MPI_\w+.*?collective \d+ of this rank, step (\d+)/20[;,].*?longer than the rank timeout of 5 s.*? " +
                                         @"rank 1 did not answer within 2 s: dead, stopped, hung, or busy outside the collectives for that long \(.*?\)\. " +
                                         @"The others answered: rank (0|2) waits in MPI_\w+");
        Assert.IsTrue(error.Success, job.Err);
        Assert.AreNotEqual(error.Groups[1].Value, error.Groups[3].Value, "the answer is the other waiting rank's");
        // Stopped once rank 0 logged step 6: the others may still be in that step's last collective (the every-rank stop check).
        Assert.IsTrue(long.Parse(error.Groups[2].Value) >= 6, "the step of the hang");
        Assert.IsTrue(CheckpointFile.ReadHeader(Path.Combine(root, CheckpointFile.DefaultName)).Step >= 4);
    }

    /// <summary>How a job ended after rank 1 (process <see cref="Victim"/>) got a signal.</summary>
    private sealed record Ending(double Seconds, int ExitCode, string Out, string Err, int Victim);

    /// <summary>
    /// Starts the job, sends <paramref name="signal"/> to rank 1 once step 6 is logged, and returns how long the job then
    /// took to end, every rank's process included; fails beyond <see cref="Bound"/> or when the launcher exits zero.
    /// </summary>
    private static Ending KillRankOne(MpiFlavour flavour, int ranks, string[] args, int signal, string dir)
    {
        using var job = MpiJob.Start(flavour, ranks, args);
        job.WaitForStep(Path.Combine(dir, "metrics.csv"), 6);
        var processes = job.RankProcesses();
        Assert.AreEqual(ranks, processes.Count, $"rank processes found: {string.Join(", ", processes)}");
        int victim = processes[1];
        var clock = Stopwatch.StartNew();
        MpiJob.Signal(victim, signal);
        Assert.IsTrue(job.WaitForExit(Bound), $"the launcher still runs {Bound.TotalSeconds} s after rank 1 got signal {signal}");
        var survivors = processes.Values.Where(p => p != victim).ToList();
        while (survivors.Any(MpiJob.IsAlive) && clock.Elapsed < Bound) Thread.Sleep(50);
        double seconds = clock.Elapsed.TotalSeconds;
        Assert.IsFalse(survivors.Any(MpiJob.IsAlive), $"a rank still runs {Bound.TotalSeconds} s after rank 1 got signal {signal}");
        Assert.AreNotEqual(0, job.ExitCode, $"{job.Err}\n{job.Out}");
        return new Ending(seconds, job.ExitCode, job.Out, job.Err, victim);
    }

    private static string[] Args(string preset, string dir, int batch) =>
        ["pretrain", "--preset", preset, "--batch", $"{batch}", "--limit", "256", "--max-steps", $"{Steps}", "--save-every", "4",
         "--log-every", "1", "--seed", "3", "--threads", "1", "--out", dir];
}
