using System.CommandLine;
using MoCoV3.Checkpoints;
using MoCoV3.Distributed;
using MoCoV3.Eval.Classification;
using MoCoV3.Eval.LinearEval;
using MoCoV3.Models;

namespace MoCoV3.Cli.Commands;

/// <summary><c>mocov3 lincls</c>: the official linear-evaluation protocol (frozen backbone, linear head, SGD, cosine).</summary>
internal static class LinclsCommand
{
    public static Command Create()
    {
        var shared = new ClassifierRunArguments();
        var epochs = new Option<int>("--epochs") { Description = "Epochs", DefaultValueFactory = _ => 90 };
        var batch = new Option<int>("--batch") { Description = "Batch size (official: 1024 over 4 GPUs); under mpirun the global batch, split evenly over the ranks", DefaultValueFactory = _ => 256 };
        var lr = new Option<double?>("--lr") { Description = "Base learning rate, scaled by batch/256 (default: the preset's lincls.base_lr, else 3 for ViT, 0.1 for ResNet)" };
        var onnx = new Option<string?>("--onnx") { Description = "Also export the classifier (backbone + head, class names in the metadata) to this ONNX file and verify it" };
        var output = new Option<string>("--out") { Description = "Run folder: metrics.csv, checkpoint.pth (backbone + head), preset.json, results.json", DefaultValueFactory = _ => "runs/lincls" };
        var evalCrop = new Option<double?>("--eval-crop") { Description = "Test view: centre crop of this share of the resized side (default: the preset's lincls.eval_crop, else the official 0.875 = Resize 256 / CenterCrop 224; 1 = plain)" };
        var standardize = new Option<bool?>("--standardize") { Description = "Standardise the frozen features before the head, folded into it at the end (default: the preset's lincls.standardize, else off as in main_lincls.py)" };

        var command = new Command("lincls", "Linear evaluation (moco-v3 main_lincls.py): train a linear head on the frozen backbone, report test top-1/top-5");
        shared.AddTo(command); // the weights, data and device first, as in --help
        foreach (Option option in new Option[] { epochs, batch, lr, output, onnx, evalCrop, standardize }) command.Options.Add(option);
        command.SetAction(r => CliErrors.Run(() =>
        {
            var options = new LinclsOptions
            {
                Weights = shared.Weights(r),
                OutputDir = r.GetValue(output)!,
                OnnxPath = r.GetValue(onnx),
                Data = shared.DataOptions(r),
                Epochs = r.GetValue(epochs),
                Batch = r.GetValue(batch),
                BaseLr = r.GetValue(lr),
                // --crop-min's shown default is finetune's; lincls takes the preset's lincls.crop_min unless it is given.
                CropMin = r.GetResult(shared.CropMin) is { Implicit: false } ? r.GetValue(shared.CropMin) : null,
                EvalCropRatio = r.GetValue(evalCrop),
                Standardize = r.GetValue(standardize),
                Seed = r.GetValue(shared.Seed),
                Compute = shared.Compute(r),
            };
            // Under mpirun / mpiexec every rank runs this command: a data-parallel run over MPI's world, --batch the global batch.
            using var context = DistributedContext.Open(compute: options.Compute);
            options = options with { Compute = options.Compute with { Device = context.RankDevice(options.Compute.Device) } };
            var evaluator = new LinearEvaluator { Communicator = context.Communicator };
            evaluator.Info += Console.WriteLine;
            evaluator.EpochDone += e => Console.WriteLine(FormattableString.Invariant(
                $"epoch {e.Epoch}/{e.Epochs} loss {e.Loss:F4} lr {e.Lr:G4} top1 {e.Top1:F2} top5 {e.Top5:F2} elapsed {e.ElapsedSeconds:F0}s"));
            var result = CliProgress.Run(progress =>
            {
                evaluator.EpochDone += e => progress.Report(new CliProgress.Update("lincls epochs", e.Epoch, e.Epochs));
                return evaluator.Run(options);
            }, plainLines: false); // the epoch lines above are the plain form
            if (context.Rank != 0) return 0; // rank 0 reports
            Console.WriteLine(FormattableString.Invariant(
                $"top1={result.Top1:F2} top5={result.Top5:F2} best_top1={result.BestTop1:F2} (test images: {result.TestCount})"));
            if (result.OnnxPath is null || result.Verify is null)
            {
                Console.WriteLine($"wrote {result.Checkpoint} (export the classifier with --onnx FILE, or with: mocov3 export --checkpoint {result.Checkpoint} " +
                                  $"--arch {Path.Combine(Path.GetDirectoryName(result.Checkpoint)!, ClassifierCheckpoint.PresetName)} --head)");
                return 0;
            }
            Console.WriteLine($"wrote {result.OnnxPath} and {result.Checkpoint}");
            return ClassifierVerifyReport.Print(result.OnnxPath, result.Verify);
        }));
        return command;
    }
}
