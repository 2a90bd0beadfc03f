using System.Diagnostics;
using System.Text.Json;
using MoCoV3.Distributed;

namespace MoCoV3.Tests.Distributed;

/// <summary>
/// Runs the real <c>mocov3</c> (built beside the tests) under each MPI's own launcher — <c>mpirun.openmpi</c> and
/// MPICH's <c>mpiexec.hydra</c>, whichever <c>mpirun</c> the alternatives point at — or without one. Skips (inconclusive)
/// when that MPI is not installed; CI installs both (.ci/run, test.sh).
/// </summary>
internal static class MpiRun
{
    public sealed record Outcome(int Code, string Out, string Err);

    private static readonly JsonSerializerOptions Json = new() { PropertyNameCaseInsensitive = true };

    /// <summary>The launcher of <paramref name="flavour"/>, or inconclusive when it is not installed.</summary>
    public static string RequireLauncher(MpiFlavour flavour)
    {
        string[] names = flavour == MpiFlavour.OpenMpi ? ["mpirun.openmpi"] : ["mpiexec.hydra", "mpirun.mpich"];
        foreach (string name in names)
            foreach (string dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries))
                if (File.Exists(Path.Combine(dir, name))) return Path.Combine(dir, name);
        Assert.Inconclusive($"{string.Join(" / ", names)} is not installed (apt-get install {(flavour == MpiFlavour.OpenMpi ? "openmpi-bin" : "mpich")})");
        return "";
    }

    /// <summary>Runs <c>mocov3 ARGS</c> on <paramref name="ranks"/> ranks under <paramref name="flavour"/>'s launcher, or once without a launcher when null.</summary>
    public static Outcome Mocov3(MpiFlavour? flavour, int ranks, IReadOnlyList<string> args, IReadOnlyDictionary<string, string?>? environment = null)
    {
        var start = StartInfo(flavour, ranks, args, environment);
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(TimeSpan.FromMinutes(2)))
        {
            process.Kill(entireProcessTree: true);
            Assert.Fail($"{start.FileName} {string.Join(' ', start.ArgumentList)} did not finish in 2 minutes");
        }
        process.WaitForExit();
        return new Outcome(process.ExitCode, stdout.Result, stderr.Result);
    }

    /// <summary>How <see cref="Mocov3"/> starts <c>mocov3 ARGS</c> (output redirected).</summary>
    public static ProcessStartInfo StartInfo(MpiFlavour? flavour, int ranks, IReadOnlyList<string> args, IReadOnlyDictionary<string, string?>? environment = null)
    {
        var start = new ProcessStartInfo { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        if (flavour is MpiFlavour f)
        {
            start.FileName = RequireLauncher(f);
            if (f == MpiFlavour.OpenMpi)
                // Root in containers, more ranks than cores, shared memory between the ranks of this host.
                foreach (string a in new[] { "-np", $"{ranks}", "--oversubscribe", "--allow-run-as-root", "--mca", "pml", "ob1", "--mca", "btl", "self,vader" })
                    start.ArgumentList.Add(a);
            else
                foreach (string a in new[] { "-n", $"{ranks}" }) start.ArgumentList.Add(a);
            start.ArgumentList.Add("dotnet");
        }
        else
        {
            start.FileName = "dotnet";
        }
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "mocov3.dll"));
        foreach (string a in args) start.ArgumentList.Add(a);
        start.Environment["TERM"] = "dumb";                // no terminal escape codes in captured output
        start.Environment["UCX_ERROR_SIGNALS"] = "";       // UCX (MPICH) must not take SIGSEGV from .NET
        foreach (var (name, value) in environment ?? new Dictionary<string, string?>())
            if (value is null) start.Environment.Remove(name); else start.Environment[name] = value;
        return start;
    }

    /// <summary>
    /// How to start one rank per entry of <paramref name="argsOfEachRank"/> under <paramref name="flavour"/>'s launcher, rank r
    /// running <c>mocov3</c> with the r-th arguments (the launchers' multiple-program syntax, <c>A : B</c>).
    /// </summary>
    public static ProcessStartInfo PerRankStartInfo(MpiFlavour flavour, IReadOnlyList<IReadOnlyList<string>> argsOfEachRank)
    {
        var start = StartInfo(flavour, 1, argsOfEachRank[0]);
        foreach (var args in argsOfEachRank.Skip(1))
            foreach (string a in (string[])[":", flavour == MpiFlavour.OpenMpi ? "-np" : "-n", "1", "dotnet", Path.Combine(AppContext.BaseDirectory, "mocov3.dll"), .. args])
                start.ArgumentList.Add(a);
        return start;
    }

    /// <summary>Runs <c>mocov3 mpi check</c> and returns each rank's result, in rank order.</summary>
    public static IReadOnlyList<CollectiveCheck.Result> Check(MpiFlavour? flavour, int ranks, IReadOnlyDictionary<string, string?>? environment = null,
                                                              params string[] extraArgs)
    {
        var outcome = Mocov3(flavour, ranks, ["mpi", "check", .. extraArgs], environment);
        Assert.AreEqual(0, outcome.Code, $"mpi check failed:\n{outcome.Err}\n{outcome.Out}");
        var results = outcome.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                                 .Where(line => line.StartsWith('{'))
                                 .Select(line => JsonSerializer.Deserialize<CollectiveCheck.Result>(line, Json)!)
                                 .OrderBy(r => r.Rank).ToList();
        Assert.AreEqual(flavour is null ? 1 : ranks, results.Count, $"one JSON line per rank expected:\n{outcome.Out}\n{outcome.Err}");
        return results;
    }
}
