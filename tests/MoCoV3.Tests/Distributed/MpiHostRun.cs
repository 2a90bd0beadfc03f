using System.Diagnostics;
using System.Text.Json;
using MoCoV3.Distributed;

namespace MoCoV3.Tests.Distributed;

/// <summary>Runs tests/MpiHost (built beside the tests) on every rank of an Open MPI job and returns each rank's JSON report, in rank order.</summary>
internal static class MpiHostRun
{
    public static IReadOnlyList<JsonElement> Scenario(string scenario, int ranks)
    {
        string launcher = MpiRun.RequireLauncher(MpiFlavour.OpenMpi);
        string host = Path.Combine(AppContext.BaseDirectory, "..", "..", "..", "..", "MpiHost", "bin",
                                   AppContext.BaseDirectory.Contains($"{Path.DirectorySeparatorChar}Debug{Path.DirectorySeparatorChar}") ? "Debug" : "Release",
                                   "net10.0", "MpiHost.dll");
        Assert.IsTrue(File.Exists(host), $"{host} is not built");
        var start = new ProcessStartInfo(launcher) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (string a in new[] { "-np", $"{ranks}", "--oversubscribe", "--allow-run-as-root", "--mca", "pml", "ob1", "--mca", "btl", "self,vader", "dotnet", host, scenario })
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
        Assert.AreEqual(0, process.ExitCode, $"MpiHost {scenario} on {ranks} ranks failed:\n{stderr.Result}\n{stdout.Result}");
        var reports = stdout.Result.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                                   .Where(line => line.StartsWith('{'))
                                   .Select(line => JsonDocument.Parse(line).RootElement)
                                   .OrderBy(r => r.GetProperty("rank").GetInt32()).ToList();
        Assert.AreEqual(ranks, reports.Count, $"one report per rank expected:\n{stdout.Result}");
        return reports;
    }
}
