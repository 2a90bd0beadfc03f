using System.Diagnostics;
using System.Text.Json;
using MoCoV3.Distributed;

namespace MoCoV3.Tests.Distributed;

/// <summary>Runs tests/MpiHost (built beside the tests) on every rank of an Open MPI job and returns each rank's JSON report, in rank order.</summary>
internal static class MpiHostRun
{
    public static IReadOnlyList<JsonElement> Scenario(string scenario, int ranks, params string[] arguments)
    {
        var (exitCode, output, errors) = Launch(scenario, ranks, arguments);
        Assert.AreEqual(0, exitCode, $"MpiHost {scenario} on {ranks} ranks failed:\n{errors}\n{output}");
        var reports = output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                            .Where(line => line.StartsWith('{'))
                            .Select(line => JsonDocument.Parse(line).RootElement)
                            .OrderBy(r => r.GetProperty("rank").GetInt32()).ToList();
        Assert.AreEqual(ranks, reports.Count, $"one report per rank expected:\n{output}");
        return reports;
    }

    /// <summary>Runs the scenario to its end (2 minutes at most) and returns mpirun's exit code and the job's output.</summary>
    public static (int ExitCode, string Out, string Err) Launch(string scenario, int ranks, params string[] arguments)
    {
        string launcher = MpiRun.RequireLauncher(MpiFlavour.OpenMpi);
        string host = Path.Combine(AppContext.BaseDirectory, "..", "..", "..", "..", "MpiHost", "bin",
                                   AppContext.BaseDirectory.Contains($"{Path.DirectorySeparatorChar}Debug{Path.DirectorySeparatorChar}") ? "Debug" : "Release",
                                   "net10.0", "MpiHost.dll");
        Assert.IsTrue(File.Exists(host), $"{host} is not built");
        var start = new ProcessStartInfo(launcher) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        string[] command = ["-np", $"{ranks}", "--oversubscribe", "--allow-run-as-root", "--mca", "pml", "ob1", "--mca", "btl", "self,vader", "dotnet", host, scenario, .. arguments];
        foreach (string a in command)
            start.ArgumentList.Add(a);
        start.Environment["TERM"] = "dumb";
        start.Environment["UCX_ERROR_SIGNALS"] = "";
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(TimeSpan.FromMinutes(2)))
        {
            process.Kill(entireProcessTree: true);
            Assert.Fail($"MpiHost {scenario} on {ranks} ranks did not finish in 2 minutes");
        }
        process.WaitForExit();
        return (process.ExitCode, stdout.Result, stderr.Result);
    }
}
