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
    /// <summary>Steps timed (after two warm-up steps) before <c>--minutes</c> fixes the run length.</summary>
    private const int TimingWarmupSteps = 2, TimingSteps = 5;

    /// <summary>Raised for every logged step (after it is written to metrics.csv).</summary>
    public event Action<MetricsRow, RunPlan>? Logged;

    /// <summary>Human-readable notes about the run (plan, resume, checkpoints).</summary>
    public event Action<string>? Info;

    /// <summary>Raised after each kNN evaluation of <see cref="PretrainOptions.KnnEvery"/> (before its metrics row is written).</summary>
    public event Action<KnnEvaluation>? KnnEvaluated;

    public PretrainResult Run(ModelPreset requestedPreset, PretrainOptions options, CancellationToken cancel = default)
    {
        Directory.CreateDirectory(options.OutputDir);
        var device = TorchRuntime.Initialize(options.Device, options.LibTorch, options.Threads);
        ScalarType? amp = options.Amp ? ScalarType.BFloat16 : null;
        string checkpointPath = Path.Combine(options.OutputDir, CheckpointFile.DefaultName);
        string? resumeFrom = ResolveResume(options, checkpointPath);

        CheckpointHeader? resumed = resumeFrom is null ? null : CheckpointFile.ReadHeader(resumeFrom);
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

        manual_seed(plan.Seed);
        using var model = new MoCo(preset, BackboneFactory.Create);
        model.to(device);
        using var optimizer = TrainStep.CreateOptimizer(preset, model, plan.PeakLr);

        long step = 0;
        double priorElapsed = 0;
        if (resumeFrom is not null)
        {
            var header = CheckpointFile.Load(resumeFrom, model, optimizer);
            step = header.Step;
            priorElapsed = header.ElapsedSeconds;
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
        model.train();
        var clock = Stopwatch.StartNew();
        string? lastCheckpoint = resumeFrom is not null ? checkpointPath : null;
        double timingStart = 0;
        double knnSeconds = 0; // left out of the step timing of --minutes
        double TrainingSeconds() => clock.Elapsed.TotalSeconds - knnSeconds;
        bool cpu = device.type == DeviceType.CPU;
        bool stoppedEarly = false;

        while (step < plan.TotalSteps && !stoppedEarly)
        {
            int epoch = (int)(step / stepsPerEpoch);
            foreach (var data in loader.Epoch(epoch, (int)(step % stepsPerEpoch)))
            {
                using var batchData = data;
                using var scope = NewDisposeScope();
                double t = (double)step / stepsPerEpoch;
                double lr = Schedules.LearningRate(t, plan.PeakLr, plan.WarmupEpochs, plan.Epochs);
                double m = Schedules.Momentum(t, plan.Epochs, preset.Momentum0);

                var pixels = data.Pixels.to(device);
                var (x1, x2) = options.Augment == "none"
                    ? (augmentation.Plain(pixels), augmentation.Plain(pixels))
                    : augmentation.TwoViews(pixels, plan.Seed, step);
                var loss = TrainStep.Run(model, optimizer, x1, x2, lr, m, amp);
                step++;
                log.Count(batch, data.WaitSeconds);

                if (!planFixed && step == TimingWarmupSteps) timingStart = TrainingSeconds();
                if (!planFixed && step == TimingWarmupSteps + TimingSteps)
                {
                    plan = FitToMinutes(preset, plan, options.Minutes!.Value * 60, clock.Elapsed.TotalSeconds,
                        (TrainingSeconds() - timingStart) / TimingSteps, step);
                    planFixed = true;
                    Info?.Invoke($"timed {TimingSteps} steps: the {options.Minutes} minute budget fits {plan.TotalSteps} steps " +
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
                    if (!double.IsFinite(lossValue)) throw new NonFiniteLossException(step, lossValue, lastCheckpoint);
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
                        var row = log.Write(step, (double)step / stepsPerEpoch, lossValue, lr, m, GradNorm(optimizer.Parameters),
                            priorElapsed + clock.Elapsed.TotalSeconds, knnTop1);
                        Logged?.Invoke(row, plan);
                    }
                }
                stop = cancel.IsCancellationRequested; // a handler of Logged may have asked to stop at this step
                if (save || stop)
                {
                    var header = new CheckpointHeader { Preset = preset, Plan = plan, Step = step, ElapsedSeconds = priorElapsed + clock.Elapsed.TotalSeconds };
                    CheckpointFile.Save(checkpointPath, header, model, optimizer);
                    lastCheckpoint = checkpointPath;
                }
                if (stop)
                {
                    stoppedEarly = true;
                    break;
                }
                if (last) break;
            }
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

    private static RunPlan FitToMinutes(ModelPreset preset, RunPlan plan, double budgetSeconds, double elapsed, double secondsPerStep, long step)
    {
        long remaining = (long)Math.Floor(Math.Max(0, budgetSeconds - elapsed) / Math.Max(secondsPerStep, 1e-6));
        long total = Math.Max(step, step + remaining);
        double epochs = (double)total / plan.StepsPerEpoch;
        return plan with { TotalSteps = total, WarmupEpochs = RunPlan.FitWarmup(preset.WarmupEpochs, preset.Epochs, epochs) };
    }

    /// <summary>L2 norm of all gradients together (what clip_grad_norm_ would measure).</summary>
    private static double GradNorm(IReadOnlyList<Parameter> parameters)
    {
        using var _ = NewDisposeScope();
        using var __ = no_grad();
        var squares = parameters.Where(p => p.grad is not null).Select(p => p.grad!.to_type(ScalarType.Float32).square().sum()).ToList();
        return squares.Count == 0 ? 0 : Math.Sqrt(stack(squares).sum().item<float>());
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
        File.WriteAllText(Path.Combine(options.OutputDir, "config.json"), JsonSerializer.Serialize(config, ModelPreset.Json));
    }

    private static string Describe(ModelPreset preset, RunPlan plan, IImageDataset data, Device device, bool planFixed) =>
        $"{preset.Name} on {data.Source} ({data.Count} images), {TorchRuntime.Describe(device)}: batch {plan.Batch}, " +
        (planFixed ? $"{plan.TotalSteps} steps ({plan.Epochs:F2} epochs)" : "length set by the time budget after timing the first steps") +
        $", peak lr {plan.PeakLr:G3}, warmup {plan.WarmupEpochs:F2} epochs, τ {preset.Temperature}, m0 {preset.Momentum0}, {preset.Optimizer}";
}

/// <summary>Where a run ended.</summary>
public sealed record PretrainResult(string Checkpoint, long Steps, RunPlan Plan, double ElapsedSeconds, bool Interrupted);
