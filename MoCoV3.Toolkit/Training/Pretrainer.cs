using MoCoV3.Method;
using MoCoV3.Evaluation;
using MoCoV3.Models;
using MoCoV3.Runtime;

namespace MoCoV3.Training;

/// <summary>
/// A MoCo v3 pretraining run: data → two augmented views → <see cref="Method.MoCo"/> loss → optimiser, with the
/// per-iteration learning-rate and momentum schedules, metrics, TensorBoard events and atomic checkpoints.
/// The run is resolved once (<see cref="PretrainRun"/>), then trained by a <see cref="PretrainSession"/>.
/// </summary>
public sealed class Pretrainer
{
    /// <summary>Raised for every logged step (after it is written to metrics.csv).</summary>
    public event Action<MetricsRow, RunPlan>? Logged;

    /// <summary>Human-readable notes about the run (plan, resume, checkpoints).</summary>
    public event Action<string>? Info;

    /// <summary>Instability warnings (spikes, kNN dips) and what <c>--on-nan rollback</c> did, one line each.</summary>
    public event Action<string>? Warning;

    /// <summary>Rollbacks of <c>--on-nan rollback</c> before the run gives up (the learning rate is then 1/1024 of the schedule's).</summary>
    public const int MaxRollbacks = RunCheckpoints.MaxRollbacks;

    /// <summary>Raised after each kNN evaluation of <see cref="PretrainOptions.KnnEvery"/> (before its metrics row is written).</summary>
    public event Action<KnnEvaluation>? KnnEvaluated;

    public PretrainResult Run(ModelPreset requestedPreset, PretrainOptions options, CancellationToken cancel = default)
    {
        var device = TorchRuntime.Initialize(options.Compute, training: true);
        var (run, dataset, knn) = PretrainRun.Resolve(requestedPreset, options, Info);
        using var session = new PretrainSession(run, dataset, knn, device, this);
        return session.Train(cancel);
    }

    internal void OnInfo(string message) => Info?.Invoke(message);
    internal void OnWarning(string message) => Warning?.Invoke(message);
    internal void OnLogged(MetricsRow row, RunPlan plan) => Logged?.Invoke(row, plan);
    internal void OnKnnEvaluated(KnnEvaluation evaluation) => KnnEvaluated?.Invoke(evaluation);
}

/// <summary>Where a run ended.</summary>
public sealed record PretrainResult(string Checkpoint, long Steps, RunPlan Plan, double ElapsedSeconds, bool Interrupted);
