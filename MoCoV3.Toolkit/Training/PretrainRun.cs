using MoCoV3.Checkpoints;
using System.Text.Json;
using MoCoV3.Data;
using MoCoV3.Evaluation;
using MoCoV3.IO;
using MoCoV3.Method;
using MoCoV3.Models;
using MoCoV3.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace MoCoV3.Training;

/// <summary>
/// A pretraining run resolved once: the preset (the checkpoint's when resuming), the plan (the checkpoint's, or made from
/// the preset and options), the options and the files. Everything the loop reads comes from here, and <c>config.json</c>
/// records exactly this. With <c>--minutes</c> the plan's length is fixed after timing the first steps (<see cref="WithLength"/>).
/// </summary>
public sealed record PretrainRun
{
    public required ModelPreset Preset { get; init; }
    public required RunPlan Plan { get; init; }
    public required PretrainOptions Options { get; init; }
    /// <summary>The checkpoint this run writes (<c>checkpoint.ckpt</c> in the output folder).</summary>
    public required string CheckpointPath { get; init; }
    /// <summary>The checkpoint the run continues from; null for a new run.</summary>
    public string? ResumeFrom { get; init; }
    /// <summary>bf16 autocast of the forward pass, or null for fp32.</summary>
    public ScalarType? Amp => Options.Amp ? ScalarType.BFloat16 : null;
    /// <summary>False while a <c>--minutes</c> budget has still to fix the run's length.</summary>
    public bool LengthFixed { get; init; }

    /// <summary>
    /// Resolves a run: validates the options, finds the checkpoint to resume (the requested preset must be the checkpoint's),
    /// opens the training data (and the kNN monitor's) and makes the plan. <paramref name="info"/> gets notes on what was done.
    /// </summary>
    public static (PretrainRun Run, IImageDataset Data, KnnMonitor? Knn) Resolve(ModelPreset requested, PretrainOptions options, Action<string>? info)
    {
        if (!Enum.IsDefined(options.OnNan)) throw new ArgumentException(JsonEnum.Expected<OnNanPolicy>("--on-nan", options.OnNan.ToString()));
        if (!Enum.IsDefined(options.Augment)) throw new ArgumentException(JsonEnum.Expected<AugmentationRecipe>("--augment", options.Augment.ToString()));
        if (options.KnnEvery < 1) throw new ArgumentException($"--knn-every must be at least 1 step, got {options.KnnEvery}");
        Directory.CreateDirectory(options.OutputDir);
        string checkpointPath = Path.Combine(options.OutputDir, CheckpointFile.DefaultName);
        if (DurableFile.RemoveStaleTemporary(checkpointPath))
            info?.Invoke($"removed {checkpointPath}{DurableFile.TemporarySuffix}, left by a checkpoint write that was interrupted");
        string? resumeFrom = FindResume(options, checkpointPath);
        CheckpointHeader? resumed = resumeFrom is null ? null : CheckpointFile.ReadHeader(resumeFrom);
        if (resumed is not null) CheckResumedPreset(requested, resumed.Preset, resumeFrom!);
        var preset = resumed?.Preset ?? requested;

        IImageDataset dataset = options.Data.Open(preset.Input.ImageSize, preset.Input.Channels, train: true, resampleOnDevice: true);
        int batch = resumed?.Plan.Batch ?? options.Batch ?? preset.Recipe.Batch;
        // The kNN bank comes from the whole train split, not only the --limit images trained on.
        var knn = options.KnnEvery is null ? null : CreateKnnMonitor(options, preset, dataset, batch);
        if (options.Data.Limit is int limit && limit < dataset.Count) dataset = new SubsetDataset(dataset, limit);

        if (batch < 2) throw new ArgumentException($"batch must be at least 2 (the other images are the negatives), got {batch}");
        if (batch > dataset.Count)
            throw new ArgumentException($"{dataset.Source}: {dataset.Count} images, fewer than one batch of {batch}; use a smaller --batch");
        int stepsPerEpoch = dataset.Count / batch;
        var plan = resumed?.Plan ?? InitialPlan(preset, options, batch, stepsPerEpoch);
        if (plan.StepsPerEpoch != stepsPerEpoch)
            throw new ArgumentException($"{resumeFrom}: the run had {plan.StepsPerEpoch} steps per epoch but {dataset.Source} gives " +
                                        $"{stepsPerEpoch} at batch {batch}; resume with the same data (and --limit) as the run");
        var run = new PretrainRun
        {
            Preset = preset, Plan = plan, Options = options, CheckpointPath = checkpointPath, ResumeFrom = resumeFrom,
            LengthFixed = resumed is not null || options.Minutes is null,
        };
        return (run, dataset, knn);
    }

    /// <summary>The run with its length fixed to <paramref name="totalSteps"/> (by <c>--minutes</c>); the warmup is fitted to it as for <c>--epochs</c>.</summary>
    public PretrainRun WithLength(long totalSteps)
    {
        double epochs = (double)totalSteps / Plan.StepsPerEpoch;
        return this with
        {
            Plan = Plan with { TotalSteps = totalSteps, WarmupEpochs = RunPlan.FitWarmup(Preset.Recipe.WarmupEpochs, Preset.Recipe.Epochs, epochs) },
            LengthFixed = true,
        };
    }

    /// <summary>Writes <c>config.json</c> in the output folder: preset, plan, options, device and versions.</summary>
    public void WriteConfig(Device device)
    {
        var config = new Dictionary<string, object?>
        {
            ["preset"] = Preset,
            ["plan"] = Plan,
            ["options"] = Options,
            ["device"] = TorchRuntime.Describe(device),
            ["torchsharp"] = typeof(torch).Assembly.GetName().Version?.ToString(),
            ["started"] = DateTimeOffset.UtcNow,
        };
        DurableFile.WriteAllText(Path.Combine(Options.OutputDir, "config.json"), JsonSerializer.Serialize(config, ModelPreset.Json));
    }

    /// <summary>One line on what the run will do.</summary>
    public string Describe(IImageDataset data, Device device) =>
        $"{Preset.Name} on {data.Source} ({data.Count} images), {TorchRuntime.Describe(device)}: batch {Plan.Batch}, " +
        (LengthFixed ? $"{Plan.TotalSteps} steps ({Plan.Epochs:F2} epochs)" : "length set by the time budget after timing the first steps") +
        $", peak lr {Plan.PeakLr:G3}, warmup {Plan.WarmupEpochs:F2} epochs, τ {Preset.Recipe.Temperature}, m0 {Preset.Recipe.Momentum0}, {Preset.Recipe.Optimizer.Name()}";

    /// <summary>
    /// The kNN monitor of <c>--knn-every</c>: the train split given, the test split of the same data; forward passes of the
    /// training batch size, or <see cref="KnnMonitor.MinBatch"/> when larger (no gradients are kept, so it fits where training does).
    /// </summary>
    private static KnnMonitor CreateKnnMonitor(PretrainOptions options, ModelPreset preset, IImageDataset train, int batch)
    {
        var test = options.Data.Open(preset.Input.ImageSize, preset.Input.Channels, train: false, resampleOnDevice: true);
        return new KnnMonitor(train, test, options.KnnTrain, options.KnnTest, Math.Max(batch, KnnMonitor.MinBatch), options.KnnK);
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

    private static string? FindResume(PretrainOptions options, string checkpointPath)
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
            ?? (long)Math.Ceiling((options.Epochs ?? preset.Recipe.Epochs) * stepsPerEpoch);
        if (totalSteps < 1) throw new ArgumentException("the run has no steps: check --epochs / --max-steps");
        double epochs = (double)totalSteps / stepsPerEpoch;
        return new RunPlan
        {
            Batch = batch,
            StepsPerEpoch = stepsPerEpoch,
            TotalSteps = totalSteps,
            PeakLr = options.Lr ?? Schedules.ScaledLearningRate(preset.Recipe.BaseLr, batch),
            WarmupEpochs = options.WarmupEpochs ?? RunPlan.FitWarmup(preset.Recipe.WarmupEpochs, preset.Recipe.Epochs, epochs),
            Seed = options.Seed,
        };
    }
}
