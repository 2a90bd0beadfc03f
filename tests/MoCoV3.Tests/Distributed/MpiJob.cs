using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using MoCoV3.Distributed;

namespace MoCoV3.Tests.Distributed;

/// <summary>
/// <c>mocov3 ARGS</c> running in the background under an MPI launcher (<see cref="MpiRun.StartInfo"/>), whose rank processes
/// a test can find (the launcher's descendants that carry Open MPI's or MPICH's rank variable) and signal. Disposing ends
/// whatever is left of the job, stopped ranks included.
/// </summary>
internal sealed class MpiJob : IDisposable
{
    public const int SigKill = 9, SigCont = 18, SigStop = 19;

    private readonly Process launcher;
    private readonly Task<string> stdout, stderr;
    private readonly HashSet<int> seen = [];

    private MpiJob(Process launcher)
    {
        this.launcher = launcher;
        stdout = launcher.StandardOutput.ReadToEndAsync();
        stderr = launcher.StandardError.ReadToEndAsync();
    }

    public static MpiJob Start(MpiFlavour flavour, int ranks, IReadOnlyList<string> args) => Start(MpiRun.StartInfo(flavour, ranks, args));

    public static MpiJob Start(ProcessStartInfo launch) => new(Process.Start(launch)!);

    public int ExitCode => launcher.ExitCode;
    public string Out => stdout.Result;
    public string Err => stderr.Result;

    /// <summary>Waits until <paramref name="metrics"/> has a row of step ≥ <paramref name="step"/>; fails if the job ends first or after 2 minutes.</summary>
    public void WaitForStep(string metrics, long step)
    {
        var clock = Stopwatch.StartNew();
        while (LastStep(metrics) < step)
        {
            if (launcher.HasExited) Assert.Fail($"the job ended (code {launcher.ExitCode}) before step {step}:\n{Err}\n{Out}");
            if (clock.Elapsed > TimeSpan.FromMinutes(2)) Assert.Fail($"step {step} not reached in 2 minutes:\n{Out}");
            Thread.Sleep(20);
        }
    }

    /// <summary>The process of each rank, by rank (the launcher's descendants running mocov3 with a rank variable).</summary>
    public IReadOnlyDictionary<int, int> RankProcesses()
    {
        var parents = new Dictionary<int, int>();
        foreach (string dir in Directory.EnumerateDirectories("/proc"))
            if (int.TryParse(Path.GetFileName(dir), out int pid) && TryRead(Path.Combine(dir, "stat")) is string stat)
                parents[pid] = int.Parse(stat[(stat.LastIndexOf(')') + 2)..].Split(' ')[1], CultureInfo.InvariantCulture);
        var ranks = new Dictionary<int, int>();
        foreach (var (pid, _) in parents)
        {
            if (!Descends(pid, launcher.Id, parents)) continue;
            if (TryRead($"/proc/{pid}/cmdline") is not string command || !command.Contains("mocov3.dll", StringComparison.Ordinal)) continue;
            if (TryRead($"/proc/{pid}/environ") is not string environment) continue;
            foreach (string variable in environment.Split('\0'))
                if ((variable.StartsWith("OMPI_COMM_WORLD_RANK=", StringComparison.Ordinal) || variable.StartsWith("PMI_RANK=", StringComparison.Ordinal))
                    && int.TryParse(variable[(variable.IndexOf('=') + 1)..], out int rank))
                    ranks[rank] = pid;
        }
        seen.UnionWith(ranks.Values);
        return ranks;
    }

    /// <summary>Sends <paramref name="signal"/> to process <paramref name="pid"/>.</summary>
    public static void Signal(int pid, int signal) => Assert.AreEqual(0, Kill(pid, signal), $"kill({pid}, {signal}) failed");

    /// <summary>Whether the launcher ended within <paramref name="limit"/>.</summary>
    public bool WaitForExit(TimeSpan limit)
    {
        if (!launcher.WaitForExit(limit)) return false;
        launcher.WaitForExit(); // the output is read to its end
        return true;
    }

    /// <summary>Whether process <paramref name="pid"/> still runs (a zombie does not).</summary>
    public static bool IsAlive(int pid) => TryRead($"/proc/{pid}/stat") is string stat && stat[(stat.LastIndexOf(')') + 2)..][0] != 'Z';

    /// <summary>The last step in a metrics.csv being written (0 when it has no complete row yet).</summary>
    public static long LastStep(string metrics)
    {
        if (TryRead(metrics) is not string text) return 0;
        string[] lines = text.Split('\n');
        if (lines.Length < 2) return 0;
        long last = 0;
        foreach (string line in lines[1..^1]) // the header, then whole rows; the last piece may be a row still being written
            if (long.TryParse(line.Split(',')[0], NumberStyles.None, CultureInfo.InvariantCulture, out long step)) last = Math.Max(last, step);
        return last;
    }

    public void Dispose()
    {
        foreach (int pid in seen.Where(IsAlive))
        {
            _ = Kill(pid, SigKill);
            _ = Kill(pid, SigCont);
        }
        if (!launcher.HasExited) launcher.Kill(entireProcessTree: true);
        launcher.WaitForExit();
        launcher.Dispose();
    }

    private static bool Descends(int pid, int ancestor, Dictionary<int, int> parents)
    {
        for (int depth = 0; depth < 8 && parents.TryGetValue(pid, out int parent); depth++, pid = parent)
            if (parent == ancestor) return true;
        return false;
    }

    private static string? TryRead(string path)
    {
        try
        {
            return File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    [DllImport("libc", EntryPoint = "kill")]
    private static extern int Kill(int pid, int signal);
}
