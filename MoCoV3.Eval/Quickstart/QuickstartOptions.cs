using MoCoV3.Data;

namespace MoCoV3.Eval.Quickstart;

/// <summary>What <see cref="QuickstartRun"/> does: pretrain for a time budget, export, verify, probe with baselines.</summary>
public sealed record QuickstartOptions
{
    /// <summary>The preset shipped for the main job; its model card (<c>models/vit-tiny-fmnist-quick.md</c>) says how it was chosen.</summary>
    public const string DefaultPreset = "vit-tiny-fmnist-quick";

    /// <summary>The pretraining budget in minutes (the schedules are fitted to it after timing the first steps).</summary>
    public double Minutes { get; init; } = 30;

    /// <summary>Preset name or JSON file.</summary>
    public string Preset { get; init; } = DefaultPreset;

    /// <summary>The dataset (a null path for Fashion-MNIST in its default folder); <see cref="DataOptions.Limit"/> uses only
    /// the first N images of each split (quick checks and tests).</summary>
    public DataOptions Data { get; init; } = new();

    /// <summary>The run folder: <c>pretrain/</c>, <c>encoder.onnx</c>, <c>probe/</c> and <c>quickstart.csv</c> go there.</summary>
    public string OutputDir { get; init; } = "runs/quickstart";

    /// <summary>CPU threads; <c>null</c> for all cores.</summary>
    public int? Threads { get; init; }

    public long Seed { get; init; }

    /// <summary>Optimiser steps instead of a time budget (tests); <c>null</c> to use <see cref="Minutes"/>.</summary>
    public long? MaxSteps { get; init; }

    /// <summary>Batch size override; <c>null</c> for the preset's.</summary>
    public int? Batch { get; init; }

    /// <summary>Throws <see cref="ArgumentException"/> naming the first setting that cannot work.</summary>
    public void Validate()
    {
        if (!(Minutes > 0) || double.IsInfinity(Minutes)) throw new ArgumentException($"--minutes must be a positive number, found {Minutes}");
        if (string.IsNullOrWhiteSpace(OutputDir)) throw new ArgumentException("the output folder (--out) is empty");
        if (Data.Limit is < 2) throw new ArgumentException($"--limit must be at least 2 images, found {Data.Limit}");
        if (MaxSteps is < 1) throw new ArgumentException($"--max-steps must be positive, found {MaxSteps}");
        if (Batch is < 2) throw new ArgumentException($"--batch must be at least 2, found {Batch}");
    }
}
