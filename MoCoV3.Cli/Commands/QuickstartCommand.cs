using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using MoCoV3.Eval.Probe;
using MoCoV3.Eval.Quickstart;
using MoCoV3.Training;

namespace MoCoV3.Cli.Commands;

/// <summary><c>mocov3 quickstart</c>: the main job — pretrain for a time budget, export, verify, probe against the baselines.</summary>
internal static class QuickstartCommand
{
    /// <summary>Exit code when the export check fails (same as <c>export --verify</c>).</summary>
    public const int VerifyFailed = ExportCommand.VerifyFailed;

    public static Command Create()
    {
        var minutes = new Option<double>("--minutes") { Description = "Pretraining budget in minutes (the schedules are fitted to it; 30 beats both baselines on 2 CPU cores, see models/vit-tiny-fmnist-quick.md)", DefaultValueFactory = _ => 30 };
        var preset = new Option<string>("--preset") { Description = "Preset name or JSON file", DefaultValueFactory = _ => QuickstartOptions.DefaultPreset };
        var data = new Option<string?>("--data") { Description = "Dataset folder or CSV manifest (default: /usr/share/datasets/fashion-mnist)" };
        var dataset = new Option<string>("--dataset") { Description = "auto | fashion-mnist | imagefolder | csv", DefaultValueFactory = _ => "auto" };
        var output = new Option<string>("--out") { Description = "Run folder", DefaultValueFactory = _ => "runs/quickstart" };
        var threads = new Option<int?>("--threads") { Description = "CPU threads (default: all cores)" };
        var seed = new Option<int>("--seed") { Description = "Random seed", DefaultValueFactory = _ => 0 };
        var limit = new Option<int?>("--limit") { Description = "Use only the first N images of each split (quick checks)" };
        var maxSteps = new Option<long?>("--max-steps") { Description = "Pretrain for this many steps instead of --minutes" };
        var batch = new Option<int?>("--batch") { Description = "Pretraining batch size (default: the preset's)" };

        var command = new Command("quickstart", "The main job on Fashion-MNIST: pretrain for a time budget, export to ONNX, verify, and probe against raw pixels and a random-init encoder")
        {
            minutes, preset, data, dataset, output, threads, seed, limit, maxSteps, batch,
        };
        command.SetAction(r => CliErrors.Run(() => Run(new QuickstartOptions
        {
            Minutes = r.GetValue(minutes),
            Preset = r.GetValue(preset)!,
            Data = new() { Path = r.GetValue(data), Kind = r.GetValue(dataset)!, Limit = r.GetValue(limit) },
            OutputDir = r.GetValue(output)!,
            Threads = r.GetValue(threads),
            Seed = r.GetValue(seed),
            MaxSteps = r.GetValue(maxSteps),
            Batch = r.GetValue(batch),
        })));
        return command;
    }

    private static int Run(QuickstartOptions options)
    {
        options.Validate();
        var trainer = new Pretrainer();
        var clock = Stopwatch.StartNew();
        PretrainResult pretrain;
        try
        {
            pretrain = PretrainProgress.Run(trainer, cancel => QuickstartRun.Pretrain(options, trainer, cancel));
        }
        catch (OperationCanceledException e)
        {
            Console.Error.WriteLine($"stopped: {e.Message}");
            return CliErrors.Interrupted;
        }
        double pretrainSeconds = clock.Elapsed.TotalSeconds;
        QuickstartResult result;
        try
        {
            result = CliProgress.Run(progress => QuickstartRun.Evaluate(options, pretrain, pretrainSeconds, Console.WriteLine,
                                                                        new ProbeCommand.ProbeProgressAdapter(progress)));
        }
        catch (InvalidDataException e) when (e.Message.Contains(QuickstartRun.EncoderFileName, StringComparison.Ordinal))
        {
            Console.Error.WriteLine($"error: export check failed: {e.Message}");
            return VerifyFailed;
        }
        Print(result);
        return 0;
    }

    private static void Print(QuickstartResult result)
    {
        static string P(double v) => (100 * v).ToString("F2", CultureInfo.InvariantCulture);
        static string Label(string name) => name switch
        {
            LinearProbe.EncoderName => "MoCo v3 encoder",
            LinearProbe.RawPixelsName => "raw pixels",
            LinearProbe.RandomInitName => "random-init encoder",
            _ => name,
        };
        Console.WriteLine();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"linear probe on the test split ({result.Encoder.TestCount} images; {result.Pretrain.Steps} pretraining steps, {result.Pretrain.Plan.Epochs:F2} epochs):"));
        Console.WriteLine($"  {"representation",-22} {"dim",5} {"top1 %",8} {"top5 %",8}");
        foreach (var p in result.Probes)
            Console.WriteLine($"  {Label(p.Name),-22} {p.FeatureDim,5} {P(p.Top1),8} {P(p.Top5),8}");
        Console.WriteLine();
        Console.WriteLine("time per stage:");
        foreach (var s in result.Stages)
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {s.Stage,-22} {s.Seconds / 60,7:F1} min"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {"total",-22} {result.Stages.Sum(s => s.Seconds) / 60,7:F1} min"));
        Console.WriteLine();
        Console.WriteLine(result.BeatsBaselines
            ? $"MoCo v3 beats both baselines (top1 {P(result.Encoder.Top1)}%). Report: {result.ReportPath}; probe model: {result.Encoder.ModelPath}"
            : $"MoCo v3 does NOT beat both baselines at this budget; try more --minutes. Report: {result.ReportPath}");
    }
}
