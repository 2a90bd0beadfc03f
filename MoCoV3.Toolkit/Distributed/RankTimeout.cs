using System.Globalization;

namespace MoCoV3.Distributed;

/// <summary>
/// How long a rank waits in one collective before it gives up on the others and ends the job (<see cref="MpiCommunicator.Timeout"/>):
/// <c>--rank-timeout SECONDS</c>, else <see cref="EnvironmentVariable"/>, else <see cref="DefaultSeconds"/>; 0 waits forever.
/// It must exceed the longest time one rank works while the others wait: rank 0's checkpoint writes and kNN evaluations,
/// and the slowest rank's start (data, model, <c>--init</c>) before the first broadcast.
/// </summary>
public static class RankTimeout
{
    public const string EnvironmentVariable = "MOCOV3_RANK_TIMEOUT";
    public const double DefaultSeconds = 300;

    /// <summary>The exit code of a job ended by a rank timeout (as <c>timeout(1)</c>'s).</summary>
    public const int ExitCode = 124;

    /// <summary>The timeout for <paramref name="seconds"/> (the option's value, null when not given); null means none.</summary>
    /// <exception cref="ArgumentException">The option or the environment variable is negative or not a number.</exception>
    public static TimeSpan? Resolve(double? seconds)
    {
        double value = seconds ?? FromEnvironment() ?? DefaultSeconds;
        if (!double.IsFinite(value) || value < 0)
            throw new ArgumentException($"--rank-timeout must be a number of seconds ≥ 0 (0: wait forever), got {value.ToString(CultureInfo.InvariantCulture)}");
        return value == 0 ? null : TimeSpan.FromSeconds(value);
    }

    private static double? FromEnvironment()
    {
        string? text = Environment.GetEnvironmentVariable(EnvironmentVariable);
        if (string.IsNullOrWhiteSpace(text)) return null;
        if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double value) || !double.IsFinite(value) || value < 0)
            throw new ArgumentException($"{EnvironmentVariable}='{text}' is not a number of seconds ≥ 0 (0: wait forever)");
        return value;
    }
}
