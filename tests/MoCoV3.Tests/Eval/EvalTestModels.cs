using MoCoV3.Checkpoints;
using System.Diagnostics;
using System.Text.Json;
using MoCoV3.Method;
using MoCoV3.Models;
using MoCoV3.Training;
using static TorchSharp.torch;

namespace MoCoV3.Tests.Eval;

/// <summary>Small models and checkpoints for the fine-tuning and linear-evaluation tests.</summary>
internal static class EvalTestModels
{
    /// <summary>The micro ViT at Fashion-MNIST's 28 px: patch 7 (16 tokens), 32 wide, 2 blocks.</summary>
    public static ModelPreset MicroVit28 => TestPresets.MicroVit.WithVit(vit => vit with { PatchSize = 7 }).WithInput(input => input with { ImageSize = 28 }) with { Name = "micro-vit-28" };

    /// <summary>A ResNet with one basic block per stage and the small stem, for 28 px grayscale images.</summary>
    public static ModelPreset MicroResNet28 => TestPresets.Get("resnet18-fmnist")
        .WithResNet(resnet => resnet with { Layers = [1, 1, 1, 1] })
        .WithHeads(heads => heads with { HiddenDim = 64, OutDim = 16 }) with
    {
        Name = "micro-resnet-28",
    };

    /// <summary>A toolkit checkpoint of a freshly initialised MoCo model of <paramref name="preset"/> (seeded).</summary>
    public static string ToolkitCheckpoint(ModelPreset preset, string dir, long seed = 0)
    {
        manual_seed(seed);
        using var moco = new MoCo(preset, BackboneFactory.Create);
        string path = Path.Combine(dir, "pretrained.ckpt");
        var plan = new RunPlan { Batch = 32, StepsPerEpoch = 1, TotalSteps = 0, PeakLr = 0, WarmupEpochs = 0, Seed = seed };
        CheckpointFile.Save(path, new CheckpointHeader { Preset = preset, Plan = plan, Step = 0, ElapsedSeconds = 0 }, moco, optimizer: null);
        return path;
    }

    /// <summary>The preset as a JSON file (for <c>--arch</c>).</summary>
    public static string PresetFile(ModelPreset preset, string dir)
    {
        string path = Path.Combine(dir, preset.Name + ".json");
        File.WriteAllText(path, JsonSerializer.Serialize(preset, ModelPreset.Json));
        return path;
    }

    /// <summary>Runs the real <c>mocov3</c> program built beside the tests.</summary>
    public static (int Code, string Out, string Err) Mocov3(params string[] args)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "mocov3.dll"));
        foreach (var a in args) start.ArgumentList.Add(a);
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(TimeSpan.FromMinutes(5))) { process.Kill(true); Assert.Fail("mocov3 hung"); }
        return (process.ExitCode, stdout.Result, stderr.Result);
    }
}
