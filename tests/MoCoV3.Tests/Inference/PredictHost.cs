using System.Diagnostics;
using System.Globalization;

namespace MoCoV3.Tests.Inference;

/// <summary>Runs tests/PredictHost (built beside the tests) on a saved model and image paths, in a process of its own.</summary>
internal static class PredictHost
{
    public sealed record Line(string Path, string Label, float[] Scores);

    public static IReadOnlyList<Line> Predict(string model, IEnumerable<string> images)
    {
        string app = Path.Combine(AppContext.BaseDirectory, "..", "..", "..", "..", "PredictHost", "bin",
                                  AppContext.BaseDirectory.Contains($"{Path.DirectorySeparatorChar}Debug{Path.DirectorySeparatorChar}") ? "Debug" : "Release",
                                  "net10.0", "PredictHost.dll");
        Assert.IsTrue(File.Exists(app), $"{app} is not built");
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.ArgumentList.Add(app);
        start.ArgumentList.Add(model);
        foreach (string image in images) start.ArgumentList.Add(image);
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        Assert.IsTrue(process.WaitForExit(120_000), "PredictHost did not finish in 2 minutes");
        Assert.AreEqual(0, process.ExitCode, stderr.Result);
        return stdout.Result.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(line =>
        {
            var parts = line.TrimEnd('\r').Split('\t');
            return new Line(parts[0], parts[1], parts[2].Split(',').Select(s => float.Parse(s, CultureInfo.InvariantCulture)).ToArray());
        }).ToList();
    }
}
