using System.CommandLine;
using MoCoV3.Checkpoints;
using MoCoV3.Distributed;
using MoCoV3.Eval.FineTune;
using MoCoV3.Export;
using MoCoV3.Models;

namespace MoCoV3.Cli.Commands;

/// <summary><c>mocov3 finetune</c>: end-to-end fine-tuning (DeiT recipe), test accuracy, and the classifier exported to ONNX and verified.</summary>
internal static class FineTuneCommand
{
    /// <summary>Exit code when ONNX Runtime and TorchSharp logits disagree.</summary>
    public const int VerifyFailed = ExportCommand.VerifyFailed;

    public static Command Create()
    {
        var shared = new ClassifierRunArguments();
        var output = new Option<string>("--out") { Description = "ONNX classifier to write (outputs 'logits' and 'embedding')", DefaultValueFactory = _ => "classifier.onnx" };
        var runDir = new Option<string?>("--run-dir") { Description = "Run folder for metrics.csv, checkpoint.pth, preset.json, results.json (default: beside --out, <name>.run)" };
        var epochs = new Option<double?>("--epochs") { Description = $"Run length in epochs (default {FineTuneOptions.DefaultEpochs})" };
        var maxSteps = new Option<long?>("--max-steps") { Description = "Run length in optimiser steps" };
        var minutes = new Option<double?>("--minutes") { Description = "Time budget: the schedule is fitted to it after timing the first steps" };
        var batch = new Option<int>("--batch") { Description = "Batch size; under mpirun the global batch, split evenly over the ranks", DefaultValueFactory = _ => 64 };
        var lr = new Option<double?>("--lr") { Description = "Peak learning rate (default: 5e-4 x batch / 512)" };
        var weightDecay = new Option<double>("--weight-decay") { Description = "AdamW weight decay (not on biases, norms, pos_embed, cls_token)", DefaultValueFactory = _ => 0.05 };
        var dropPath = new Option<double>("--drop-path") { Description = "Stochastic depth of the last block (linear from 0 over depth; ViT only)", DefaultValueFactory = _ => 0.1 };
        var smoothing = new Option<double>("--smoothing") { Description = "Label smoothing", DefaultValueFactory = _ => 0.1 };
        var mixup = new Option<double>("--mixup") { Description = "Mixup alpha (0: off)", DefaultValueFactory = _ => 0.8 };
        var cutmix = new Option<double>("--cutmix") { Description = "CutMix alpha (0: off)", DefaultValueFactory = _ => 1.0 };
        var logEvery = new Option<int>("--log-every") { Description = "Steps between logged losses", DefaultValueFactory = _ => 10 };

        var command = new Command("finetune", "Fine-tune a pretrained backbone with a new linear head (DeiT recipe) and export the classifier to ONNX");
        shared.AddTo(command); // the weights, data and device first, as in --help
        foreach (Option option in new Option[] { output, runDir, epochs, maxSteps, minutes, batch, lr, weightDecay, dropPath, smoothing, mixup, cutmix, logEvery }) command.Options.Add(option);
        command.SetAction(r => CliErrors.Run(() =>
        {
            string onnx = r.GetValue(output)!;
            var options = new FineTuneOptions
            {
                Weights = shared.Weights(r),
                OnnxPath = onnx,
                OutputDir = r.GetValue(runDir) ?? Path.ChangeExtension(onnx, null) + ".run",
                Data = shared.DataOptions(r),
                Epochs = r.GetValue(epochs),
                MaxSteps = r.GetValue(maxSteps),
                Minutes = r.GetValue(minutes),
                Batch = r.GetValue(batch),
                Lr = r.GetValue(lr),
                WeightDecay = r.GetValue(weightDecay),
                DropPath = r.GetValue(dropPath),
                LabelSmoothing = r.GetValue(smoothing),
                MixupAlpha = r.GetValue(mixup),
                CutmixAlpha = r.GetValue(cutmix),
                CropMin = r.GetValue(shared.CropMin),
                Seed = r.GetValue(shared.Seed),
                Compute = shared.Compute(r),
                LogEvery = Math.Max(1, r.GetValue(logEvery)),
            };
            return Run(options);
        }));
        return command;
    }

    private static int Run(FineTuneOptions options)
    {
        // Under mpirun / mpiexec every rank runs this command: a data-parallel run over MPI's world, --batch the global batch.
        using var context = DistributedContext.Open(compute: options.Compute);
        options = options with { Compute = options.Compute with { Device = context.RankDevice(options.Compute.Device) } };
        var tuner = new FineTuner { Communicator = context.Communicator };
        tuner.Info += Console.WriteLine;
        tuner.Logged += row => Console.WriteLine(FormattableString.Invariant(
            $"step {row.Step}/{row.TotalSteps} epoch {row.Epoch:F2} loss {row.Loss:F4} lr {row.Lr:G3} {row.ImagesPerSecond:F1} img/s elapsed {row.ElapsedSeconds:F0}s"));
        var result = CliProgress.Run(progress =>
        {
            tuner.Logged += row => progress.Report(new CliProgress.Update("finetune steps", row.Step, row.TotalSteps));
            return tuner.Run(options);
        }, plainLines: false); // the step lines above are the plain form
        if (context.Rank != 0 || result.Verify is null) return 0; // rank 0 reports
        Console.WriteLine(FormattableString.Invariant($"top1={result.Test.Top1:F2} top5={result.Test.Top5:F2} (test images: {result.Test.Count})"));
        Console.WriteLine($"wrote {result.OnnxPath} and {result.Checkpoint}");
        return ClassifierVerifyReport.Print(result.OnnxPath, result.Verify);
    }
}
