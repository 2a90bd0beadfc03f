using MoCoV3.IO;
using System.Diagnostics;
using System.Text.Json;
using MoCoV3.Augment;
using MoCoV3.Data;
using MoCoV3.Evaluation;
using MoCoV3.Method;
using MoCoV3.Models;
using MoCoV3.Optim;
using MoCoV3.Runtime;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MoCoV3.Training;

/// <summary>
/// A MoCo v3 pretraining run: data → two augmented views → <see cref="MoCo"/> loss → optimiser, with the
/// per-iteration learning-rate and momentum schedules, metrics, TensorBoard events and atomic checkpoints.
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
    public const int MaxRollbacks = 10;

    /// <summary>Raised after each kNN evaluation of <see cref="PretrainOptions.KnnEvery"/> (before its metrics row is written).</summary>
    public event Action<KnnEvaluation>? KnnEvaluated;

    public PretrainResult Run(ModelPreset requestedPreset, PretrainOptions options, CancellationToken cancel = default)
    {
        Directory.CreateDirectory(options.OutputDir);
        if (options.OnNan is not ("stop" or "rollback")) throw new ArgumentException($"--on-nan must be stop or rollback, got '{options.OnNan}'");
        var device = TorchRuntime.Initialize(options.Device, options.LibTorch, options.Threads, training: true);
        ScalarType? amp = options.Amp ? ScalarType.BFloat16 : null;
        string checkpointPath = Path.Combine(options.OutputDir, CheckpointFile.DefaultName);
        if (DurableFile.RemoveStaleTemporary(checkpointPath))
            Info?.Invoke($"removed {checkpointPath}{DurableFile.TemporarySuffix}, left by a checkpoint write that was interrupted");
        string? resumeFrom = ResolveResume(options, checkpointPath);

        CheckpointHeader? resumed = resumeFrom is null ? null : CheckpointFile.ReadHeader(resumeFrom);
        if (resumed is not null)
            CheckResumedPreset(requestedPreset, resumed.Preset, resumeFrom!);
        var preset = resumed?.Preset ?? requestedPreset;

        IImageDataset dataset = DatasetFactory.Open(options.DatasetKind, options.Data, preset.ImageSize, preset.Channels, train: true, resampleOnDevice: true);
        // The kNN bank comes from the whole train split, not only the --limit images trained on.
        var knn = options.KnnEvery is null ? null : CreateKnnMonitor(options, preset, dataset, resumed?.Plan.Batch ?? options.Batch ?? preset.Batch);
        if (options.Limit is int limit && limit < dataset.Count) dataset = new SubsetDataset(dataset, limit);

        int batch = resumed?.Plan.Batch ?? options.Batch ?? preset.Batch;
        if (batch < 2) throw new ArgumentException($"batch must be at least 2 (the other images are the negatives), got {batch}");
        if (batch > dataset.Count)
            throw new ArgumentException($"{dataset.Source}: {dataset.Count} images, fewer than one batch of {batch}; use a smaller --batch");
        int stepsPerEpoch = dataset.Count / batch;

        var plan = resumed?.Plan ?? InitialPlan(preset, options, batch, stepsPerEpoch);
        if (plan.StepsPerEpoch != stepsPerEpoch)
            throw new ArgumentException($"{resumeFrom}: the run had {plan.StepsPerEpoch} steps per epoch but {dataset.Source} gives " +
                                        $"{stepsPerEpoch} at batch {batch}; resume with the same data (and --limit) as the run");
        bool planFixed = resumed is not null || options.Minutes is null;
        var budget = planFixed ? null : new TimeBudget(options.Minutes!.Value);

        manual_seed(plan.Seed);
        using var model = new MoCo(preset, BackboneFactory.Create);
        model.to(device);
        using var optimizer = TrainStep.CreateOptimizer(preset, model, plan.PeakLr);

        long step = 0;
        double priorElapsed = 0;
        double lrScale = 1; // halved by each --on-nan rollback
        if (resumeFrom is not null)
        {
            var header = CheckpointFile.Load(resumeFrom, model, optimizer);
            step = header.Step;
            priorElapsed = header.ElapsedSeconds;
            lrScale = header.LrScale;
            Info?.Invoke($"resumed from {resumeFrom} at step {step} ({step / (double)stepsPerEpoch:F2} epochs)");
        }
        else if (options.Init is not null)
        {
            InitialWeights.Load(options.Init, model, Info);
        }

        WriteConfig(options, preset, plan, device);
        using var log = new RunLog(options.OutputDir, step, options.TensorBoard);
        var augmentation = MoCoAugmentation.FromPreset(preset);
        // The seed is the run's (from the checkpoint when resuming), so a resumed run sees the same batches and views.
        using var loader = new PrefetchLoader(dataset, batch, plan.Seed, shuffle: true, dropLast: true);

        Info?.Invoke(Describe(preset, plan, dataset, device, planFixed));
        if (knn is not null) Info?.Invoke($"{knn.Describe()}, every {options.KnnEvery} steps and at the end");
        if (lrScale != 1) Info?.Invoke($"learning rate scaled by {lrScale} (earlier --on-nan rollbacks)");

        var watched = WatchedLayers.Of(model.BaseEncoder.Backbone);
        InstabilityMonitor NewMonitor()
        {
            var monitor = new InstabilityMonitor(options.SpikeFactor, watched.FirstName, watched.LastName);
            monitor.Seed(log.Kept); // a resumed run flags exactly what the uninterrupted run would
            return monitor;
        }
        var instability = NewMonitor();
        var clip = options.ClipGrad is double maxNorm ? new GradientClipping(maxNorm) : null;

        model.train();
        var clock = Stopwatch.StartNew();
        string? lastCheckpoint = resumeFrom;
        long? lastCheckpointStep = resumeFrom is null ? null : step;
        void Save()
        {
            var header = new CheckpointHeader
            {
                Preset = preset, Plan = plan, Step = step, ElapsedSeconds = priorElapsed + clock.Elapsed.TotalSeconds, LrScale = lrScale,
            };
            try
            {
                CheckpointFile.Save(checkpointPath, header, model, optimizer);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new CheckpointWriteException(checkpointPath, step, lastCheckpoint, lastCheckpointStep, e);
            }
            lastCheckpoint = checkpointPath;
            lastCheckpointStep = step;
        }
        // Reloads the last good checkpoint and halves the learning rate (--on-nan rollback); the metrics logged after that
        // checkpoint are dropped, as on a resume.
        void RollBack(string what, double value)
        {
            if (lastCheckpoint is null || lrScale <= Math.Pow(0.5, MaxRollbacks))
                throw new NonFiniteLossException(step, value, lastCheckpoint, what,
                    lastCheckpoint is null ? "Nothing to roll back to." : $"Gave up after {MaxRollbacks} rollbacks (learning rate × {lrScale}).");
            long failed = step;
            var header = CheckpointFile.Load(lastCheckpoint, model, optimizer);
            step = header.Step;
            lrScale /= 2;
            log.RewindTo(step);
            instability = NewMonitor();
            Save(); // the halved learning rate is part of the run now, also for a resume
            Warning?.Invoke($"{what} is {value} at step {failed}: rolled back to the checkpoint of step {step} " +
                            $"and halved the learning rate (now {lrScale} × the schedule's)");
        }
        if (options.OnNan == "rollback" && lastCheckpoint is null)
        {
            Save(); // step 0, so that a NaN in the first steps has something to roll back to
            Info?.Invoke($"--on-nan rollback: wrote the initial checkpoint {checkpointPath}");
        }
        double knnSeconds = 0; // left out of the step timing of --minutes
        double TrainingSeconds() => clock.Elapsed.TotalSeconds - knnSeconds;
        bool cpu = device.type == DeviceType.CPU;
        bool stoppedEarly = false;

        while (step < plan.TotalSteps && !stoppedEarly)
        {
            int epoch = (int)(step / stepsPerEpoch);
            bool rolledBack = false;
            foreach (var data in loader.Epoch(epoch, (int)(step % stepsPerEpoch)))
            {
                using var batchData = data;
                using var scope = NewDisposeScope();
                double t = (double)step / stepsPerEpoch;
                double lr = lrScale * Schedules.LearningRate(t, plan.PeakLr, plan.WarmupEpochs, plan.Epochs);
                double m = Schedules.Momentum(t, plan.Epochs, preset.Momentum0);

                var pixels = data.Pixels.to(device);
                var (x1, x2) = options.Augment == "none"
                    ? (augmentation.Plain(pixels), augmentation.Plain(pixels))
                    : augmentation.TwoViews(pixels, plan.Seed, step);
                var loss = TrainStep.Run(model, optimizer, x1, x2, lr, m, clip, amp);
                step++;
                log.Count(batch, data.WaitSeconds);

                if (!planFixed && budget!.OnStep(step, TrainingSeconds(), clock.Elapsed.TotalSeconds) is long total)
                {
                    plan = FitToSteps(preset, plan, total);
                    planFixed = true;
                    Info?.Invoke($"timed {budget.TimedSteps} steps: the {budget.Minutes} minute budget fits {plan.TotalSteps} steps " +
                                 $"({plan.Epochs:F2} epochs, warmup {plan.WarmupEpochs:F2})");
                }

                bool last = step >= plan.TotalSteps;
                bool knnStep = knn is not null && (step % options.KnnEvery!.Value == 0 || last);
                bool logStep = step % options.LogEvery == 0 || last || step == 1 || knnStep;
                bool save = last || (options.SaveEvery is long every ? step % every == 0 : step % stepsPerEpoch == 0);
                bool stop = cancel.IsCancellationRequested;
                if (logStep || save || stop || cpu)
                {
                    double lossValue = loss.item<float>();
                    // Gradients before clipping; checked before a checkpoint too, so one is never written after an inf gradient.
                    double? gradNorm = logStep || save ? clip?.LastNorm ?? WatchedLayers.GradNorm(optimizer.Parameters) : null;
                    (string what, double value)? nonFinite = !double.IsFinite(lossValue) ? ("loss", lossValue)
                        : gradNorm is double g && !double.IsFinite(g) ? ("gradient norm", g) : null;
                    if (nonFinite is var (what, value))
                    {
                        if (options.OnNan != "rollback") throw new NonFiniteLossException(step, value, lastCheckpoint, what);
                        RollBack(what, value);
                        rolledBack = true;
                        break;
                    }
                    double? knnTop1 = null;
                    if (knnStep)
                    {
                        var evaluation = MeasureKnn(knn!, model, augmentation, device, step, (double)step / stepsPerEpoch);
                        knnSeconds += evaluation.Seconds;
                        log.Exclude(evaluation.Seconds);
                        knnTop1 = evaluation.Result.Top1;
                        KnnEvaluated?.Invoke(evaluation);
                    }
                    if (logStep)
                    {
                        double unclip = clip?.LastScale ?? 1; // the layer norms as they were before clipping
                        var row = new MetricsRow
                        {
                            Step = step, Epoch = (double)step / stepsPerEpoch, Loss = lossValue, Lr = lr, Momentum = m, GradNorm = gradNorm!.Value,
                            ElapsedS = priorElapsed + clock.Elapsed.TotalSeconds, KnnTop1 = knnTop1,
                            GradNormFirst = WatchedLayers.GradNorm(watched.First) / unclip,
                            GradNormLast = WatchedLayers.GradNorm(watched.Last) / unclip,
                        };
                        var warnings = instability.Observe(row);
                        row = log.Write(row with { Warnings = string.Join(';', warnings.Select(w => w.Kind)) }, warnings);
                        foreach (var w in warnings) Warning?.Invoke(w.Message);
                        Logged?.Invoke(row, plan);
                    }
                }
                stop = cancel.IsCancellationRequested; // a handler of Logged may have asked to stop at this step
                if (save || stop) Save();
                if (stop)
                {
                    stoppedEarly = true;
                    break;
                }
                if (last) break;
            }
            if (rolledBack) continue;
        }
        return new PretrainResult(checkpointPath, step, plan, priorElapsed + clock.Elapsed.TotalSeconds, stoppedEarly);
    }

    /// <summary>
    /// The kNN monitor of <c>--knn-every</c>: the train split given, the test split of the same data; forward passes of the
    /// training batch size, or <see cref="KnnMonitor.MinBatch"/> when larger (no gradients are kept, so it fits where training does).
    /// </summary>
    private static KnnMonitor CreateKnnMonitor(PretrainOptions options, ModelPreset preset, IImageDataset train, int batch)
    {
        if (options.KnnEvery < 1) throw new ArgumentException($"--knn-every must be at least 1 step, got {options.KnnEvery}");
        var test = DatasetFactory.Open(options.DatasetKind, options.Data, preset.ImageSize, preset.Channels, train: false, resampleOnDevice: true);
        return new KnnMonitor(train, test, options.KnnTrain, options.KnnTest, Math.Max(batch, KnnMonitor.MinBatch), options.KnnK);
    }

    /// <summary>kNN accuracy of the query backbone f_q now (eval mode, no gradients; train mode is restored).</summary>
    private static KnnEvaluation MeasureKnn(KnnMonitor knn, MoCo model, MoCoAugmentation augmentation, Device device, long step, double epoch)
    {
        var clock = Stopwatch.StartNew();
        var result = knn.Evaluate(model.BaseEncoder.Backbone, augmentation.Plain, device);
        return new KnnEvaluation(step, epoch, result, clock.Elapsed.TotalSeconds);
    }

    /// <summary>
    /// A run resumes with the preset it was started with: asking for another (by name, or the same name with other
    /// training fields, e.g. an edited JSON) is an error naming both, not a silent swap. Evaluation-only fields may differ.
    /// </summary>
    private static void CheckResumedPreset(ModelPreset requested, ModelPreset saved, string checkpoint)
    {
        var differences = requested.TrainingDifferences(saved);
        if (requested.Name == saved.Name && differences.Count == 0) return;
        string fields = differences.Count == 0 ? "" : $" (they differ in {string.Join(", ", differences.Take(8))}{(differences.Count > 8 ? ", …" : "")})";
        throw new ArgumentException($"{checkpoint}: the run was started with preset '{saved.Name}', but --preset asks for '{requested.Name}'{fields}; " +
                                    $"resume with --preset {saved.Name} (the checkpoint's own), or start a new run in another --out folder");
    }

    private static string? ResolveResume(PretrainOptions options, string checkpointPath)
    {
        if (options.Resume is null) return null;
        if (options.Resume == "auto") return File.Exists(checkpointPath) ? checkpointPath : null;
        if (Directory.Exists(options.Resume))
        {
            string inDir = Path.Combine(options.Resume, CheckpointFile.DefaultName);
            if (!File.Exists(inDir)) throw new FileNotFoundException($"{options.Resume}: no {CheckpointFile.DefaultName} in this folder", inDir);
            return inDir;
        }
        if (File.Exists(options.Resume)) return options.Resume;
        throw new FileNotFoundException($"{options.Resume}: --resume expects a run folder, a checkpoint file or 'auto'", options.Resume);
    }

    private static RunPlan InitialPlan(ModelPreset preset, PretrainOptions options, int batch, int stepsPerEpoch)
    {
        long totalSteps = options.MaxSteps
            ?? (long)Math.Ceiling((options.Epochs ?? preset.Epochs) * stepsPerEpoch);
        if (totalSteps < 1) throw new ArgumentException("the run has no steps: check --epochs / --max-steps");
        double epochs = (double)totalSteps / stepsPerEpoch;
        return new RunPlan
        {
            Batch = batch,
            StepsPerEpoch = stepsPerEpoch,
            TotalSteps = totalSteps,
            PeakLr = options.Lr ?? Schedules.ScaledLearningRate(preset.BaseLr, batch),
            WarmupEpochs = options.WarmupEpochs ?? RunPlan.FitWarmup(preset.WarmupEpochs, preset.Epochs, epochs),
            Seed = options.Seed,
        };
    }

    /// <summary>The plan for a run length fixed by <c>--minutes</c>: the warmup is fitted to it as for <c>--epochs</c>.</summary>
    private static RunPlan FitToSteps(ModelPreset preset, RunPlan plan, long total)
    {
        double epochs = (double)total / plan.StepsPerEpoch;
        return plan with { TotalSteps = total, WarmupEpochs = RunPlan.FitWarmup(preset.WarmupEpochs, preset.Epochs, epochs) };
    }

    private void WriteConfig(PretrainOptions options, ModelPreset preset, RunPlan plan, Device device)
    {
        var config = new Dictionary<string, object?>
        {
            ["preset"] = preset,
            ["plan"] = plan,
            ["options"] = options,
            ["device"] = TorchRuntime.Describe(device),
            ["torchsharp"] = typeof(torch).Assembly.GetName().Version?.ToString(),
            ["started"] = DateTimeOffset.UtcNow,
        };
        DurableFile.WriteAllText(Path.Combine(options.OutputDir, "config.json"), JsonSerializer.Serialize(config, ModelPreset.Json));
    }

    private static string Describe(ModelPreset preset, RunPlan plan, IImageDataset data, Device device, bool planFixed) =>
        $"{preset.Name} on {data.Source} ({data.Count} images), {TorchRuntime.Describe(device)}: batch {plan.Batch}, " +
        (planFixed ? $"{plan.TotalSteps} steps ({plan.Epochs:F2} epochs)" : "length set by the time budget after timing the first steps") +
        $", peak lr {plan.PeakLr:G3}, warmup {plan.WarmupEpochs:F2} epochs, τ {preset.Temperature}, m0 {preset.Momentum0}, {preset.Optimizer}";
}

/// <summary>Where a run ended.</summary>
public sealed record PretrainResult(string Checkpoint, long Steps, RunPlan Plan, double ElapsedSeconds, bool Interrupted);
