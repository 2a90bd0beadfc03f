using System.Globalization;

namespace MoCoV3.Tests.Fuzz;

/// <summary>
/// The fuzz run's knobs, from the environment: <c>MOCOV3_FUZZ_CASES</c> (cases per format; default a CI-sized count),
/// <c>MOCOV3_FUZZ_SEED</c> (default 1), <c>MOCOV3_FUZZ_CASE</c> (replay just that case index),
/// <c>MOCOV3_FUZZ_TIMEOUT_S</c> (per case, default 20) and <c>MOCOV3_FUZZ_REPORT</c> (a file the summary lines are
/// appended to).
/// </summary>
internal sealed record FuzzSettings(int Cases, int Seed, int? OnlyCase, TimeSpan Timeout, string? ReportFile)
{
    public static FuzzSettings FromEnvironment(int defaultCases) => new(
        Cases: Int("MOCOV3_FUZZ_CASES") ?? defaultCases,
        Seed: Int("MOCOV3_FUZZ_SEED") ?? 1,
        OnlyCase: Int("MOCOV3_FUZZ_CASE"),
        Timeout: TimeSpan.FromSeconds(Int("MOCOV3_FUZZ_TIMEOUT_S") ?? 20),
        ReportFile: Environment.GetEnvironmentVariable("MOCOV3_FUZZ_REPORT") is { Length: > 0 } f ? f : null);

    private static int? Int(string name)
    {
        string? value = Environment.GetEnvironmentVariable(name);
        if (string.IsNullOrWhiteSpace(value))
            return null;
        if (!int.TryParse(value, NumberStyles.Integer, CultureInfo.InvariantCulture, out int parsed) || parsed < 0)
            throw new InvalidOperationException($"{name}={value}: expected a non-negative integer");
        return parsed;
    }
}
