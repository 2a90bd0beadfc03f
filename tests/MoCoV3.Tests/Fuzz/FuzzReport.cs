using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace MoCoV3.Tests.Fuzz;

/// <summary>The outcome counts of one format's fuzz run, a sample message per error type, and every failure.</summary>
internal sealed class FuzzReport(string format, int seed)
{
    private readonly SortedDictionary<string, int> refusals = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> samples = new(StringComparer.Ordinal);
    private readonly Dictionary<string, int> kinds = new(StringComparer.Ordinal);
    private readonly List<string> failures = [];

    public string Format { get; } = format;
    public int Cases { get; private set; }
    public int Successes { get; private set; }
    public int TypedErrors => refusals.Values.Sum();
    public IReadOnlyList<string> Failures => failures;
    public TimeSpan Elapsed { get; set; }

    public void Succeeded()
    {
        Cases++;
        Successes++;
    }

    public void Refused(string type, string message)
    {
        Cases++;
        refusals[type] = refusals.GetValueOrDefault(type) + 1;
        message = new string(message.Select(c => char.IsControl(c) ? '?' : c).ToArray()); // mutated bytes end up in messages
        samples.TryAdd(type, message.Length > 300 ? message[..300] + "…" : message);
        string kind = Kind(message);
        kinds[kind] = kinds.GetValueOrDefault(kind) + 1;
    }

    /// <summary>The start of a message with its numbers and quoted names blanked, so that refusals of one kind group together.</summary>
    private static string Kind(string message)
    {
        string text = Regex.Replace(message, @"'[^']*'|""[^""]*""", "'…'");
        text = Regex.Replace(text, @"-?\d+", "N");
        return text.Length > 90 ? text[..90] + "…" : text;
    }

    public void Fail(string replay, string what)
    {
        Cases++;
        failures.Add($"{replay}: {what}");
    }

    public string Summary()
    {
        var text = new StringBuilder();
        text.Append(CultureInfo.InvariantCulture, $"fuzz {Format}: {Cases} cases (seed {seed}, {Elapsed.TotalSeconds:0.0} s): ");
        text.Append(CultureInfo.InvariantCulture, $"{Successes} loaded, {TypedErrors} typed errors (");
        text.Append(string.Join(", ", refusals.Select(kv => $"{kv.Key} {kv.Value}")));
        text.Append(CultureInfo.InvariantCulture, $"), {failures.Count} FAIL");
        foreach (var (type, message) in samples.OrderBy(kv => kv.Key, StringComparer.Ordinal))
            text.Append(CultureInfo.InvariantCulture, $"\n  sample {type}: {message}");
        foreach (var (kind, count) in kinds.OrderByDescending(kv => kv.Value).ThenBy(kv => kv.Key, StringComparer.Ordinal).Take(6))
            text.Append(CultureInfo.InvariantCulture, $"\n  {count,5} × {kind}");
        foreach (string failure in failures.Take(10))
            text.Append(CultureInfo.InvariantCulture, $"\n  FAIL {failure}");
        return text.ToString();
    }

    /// <summary>Fails the test when any case failed, listing the first ones with how to replay them.</summary>
    public void AssertNoFailures()
    {
        Assert.IsTrue(Cases > 0, $"fuzz {Format}: no case ran");
        if (failures.Count > 0)
            Assert.Fail($"fuzz {Format}: {failures.Count} of {Cases} cases failed:\n" + string.Join("\n", failures.Take(5)));
    }
}
