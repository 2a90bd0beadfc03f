using System.Globalization;

namespace MoCoV3.Training;

/// <summary>One thing the <see cref="InstabilityMonitor"/> flagged at a logged step.</summary>
/// <param name="Kind">Short name for metrics.csv: <c>loss_spike</c>, <c>grad_spike</c>, <c>grad_spike_first</c>, <c>grad_spike_last</c>, <c>knn_dip</c>.</param>
/// <param name="Value">The value flagged.</param>
/// <param name="Reference">What it was compared with: the running median (spikes) or the best kNN accuracy so far (dips).</param>
public sealed record InstabilityWarning(long Step, string Kind, double Value, double Reference, string Message);

/// <summary>
/// Watches the logged steps for the paper's signs of instability (§4.2, Fig. 4): a gradient <b>spike</b> — most visible in
/// the first layer, a few iterations before the last — followed by a <b>dip</b> in kNN accuracy that recovers slowly.
/// A value is a spike when it exceeds <c>factor</c> × the median of the previous <see cref="Window"/> logged values of the
/// same series (once <see cref="MinHistory"/> are known); a kNN accuracy is a dip when it falls more than
/// <see cref="DipDrop"/> below the best one so far. The state is rebuilt from metrics.csv on resume, so a resumed run flags
/// exactly what an uninterrupted one would.
/// </summary>
public sealed class InstabilityMonitor
{
    public const int Window = 20, MinHistory = 5;
    public const double DefaultSpikeFactor = 5;
    /// <summary>Top-1 drop (absolute, e.g. 0.05 = 5 points) below the best kNN accuracy so far that counts as a dip.</summary>
    public const double DipDrop = 0.05;

    private readonly double factor;
    private readonly string firstName, lastName;
    private readonly Queue<double> loss = new(), grad = new(), first = new(), last = new();
    private double bestKnn = double.NegativeInfinity;
    private long bestKnnStep;

    public InstabilityMonitor(double spikeFactor, string firstLayer, string lastBlock)
    {
        if (!(spikeFactor > 1)) throw new ArgumentException($"--spike-factor must be above 1, got {spikeFactor}");
        factor = spikeFactor;
        firstName = firstLayer;
        lastName = lastBlock;
    }

    /// <summary>Replays the rows an earlier run logged (resume, rollback) without reporting anything.</summary>
    public void Seed(IEnumerable<MetricsRow> rows)
    {
        foreach (var row in rows) _ = Observe(row);
    }

    /// <summary>The warnings of a logged step (its <see cref="MetricsRow.Warnings"/> is ignored), then adds it to the history.</summary>
    public IReadOnlyList<InstabilityWarning> Observe(MetricsRow row)
    {
        var warnings = new List<InstabilityWarning>();
        Spike(warnings, row.Step, loss, row.Loss, "loss_spike", "loss");
        Spike(warnings, row.Step, grad, row.GradNorm, "grad_spike", "gradient norm");
        if (row.GradNormFirst is double f) Spike(warnings, row.Step, first, f, "grad_spike_first", $"gradient norm of the first layer ({firstName})");
        if (row.GradNormLast is double l) Spike(warnings, row.Step, last, l, "grad_spike_last", $"gradient norm of the last block ({lastName})");
        if (row.KnnTop1 is double knn)
        {
            if (knn < bestKnn - DipDrop)
                warnings.Add(new InstabilityWarning(row.Step, "knn_dip", knn, bestKnn, Invariant(
                    $"step {row.Step}: kNN top-1 dipped to {knn:F4}, {100 * (bestKnn - knn):F1} points below the best {bestKnn:F4} (step {bestKnnStep})")));
            if (knn > bestKnn) (bestKnn, bestKnnStep) = (knn, row.Step);
        }
        return warnings;
    }

    private void Spike(List<InstabilityWarning> warnings, long step, Queue<double> history, double value, string kind, string what)
    {
        if (history.Count >= MinHistory)
        {
            double median = Median(history);
            if (value > factor * median)
                warnings.Add(new InstabilityWarning(step, kind, value, median, Invariant(
                    $"step {step}: {what} spiked to {value:G4}, {value / median:F1}× its running median {median:G4}")));
        }
        history.Enqueue(value);
        if (history.Count > Window) history.Dequeue();
    }

    private static double Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToArray();
        int n = sorted.Length;
        return n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
    }

    private static string Invariant(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);
}
