using System.CommandLine;
using MoCoV3.Checkpoints;
using MoCoV3.Eval.Classification;
using MoCoV3.Eval.LinearEval;
using MoCoV3.Models;

namespace MoCoV3.Cli.Commands;

/// <summary><c>mocov3 lincls</c>: the official linear-evaluation protocol (frozen backbone, linear head, SGD, cosine).</summary>
internal static class LinclsCommand
{
    public static Command Create()
    {
        var checkpoint = new Option<string>("--checkpoint") { Description = "Pretrained weights: toolkit checkpoint, official moco-v3 .pth.tar, MMSelfSup, timm or torchvision", Required = true };
        var arch = new Option<string?>("--arch") { Description = "Preset name or JSON file (default: the checkpoint's own preset, or detected from the shapes)" };
        var from = new Option<string>("--from") { Description = "auto | toolkit | official | mmselfsup | timm | torchvision", DefaultValueFactory = _ => "auto" };
        from.AcceptOnlyFromAmong("auto", "toolkit", "official", "mmselfsup", "timm", "torchvision");
        var data = new Option<string?>("--data") { Description = "Dataset folder or CSV manifest (default: /usr/share/datasets/fashion-mnist); needs a train and a test split" };
        var dataset = new Option<string>("--dataset") { Description = "auto | fashion-mnist | imagefolder | csv", DefaultValueFactory = _ => "auto" };
        var epochs = new Option<int>("--epochs") { Description = "Epochs", DefaultValueFactory = _ => 90 };
        var batch = new Option<int>("--batch") { Description = "Batch size (official: 1024 over 4 GPUs)", DefaultValueFactory = _ => 256 };
        var lr = new Option<double?>("--lr") { Description = "Base learning rate, scaled by batch/256 (default: 3 for ViT, 0.1 for ResNet)" };
        var output = new Option<string>("--out") { Description = "Run folder: metrics.csv, checkpoint.pth (backbone + head), preset.json, results.json", DefaultValueFactory = _ => "runs/lincls" };
        var cropMin = new Option<double>("--crop-min") { Description = "Smallest area fraction of the random resized crop", DefaultValueFactory = _ => 0.08 };
        var evalCrop = new Option<double>("--eval-crop") { Description = "Test view: centre crop of this share of the resized side (0.875 = Resize 256 / CenterCrop 224; 1 = plain)", DefaultValueFactory = _ => ImageTransforms.ImageNetCropRatio };
        var seed = new Option<long>("--seed") { Description = "Random seed", DefaultValueFactory = _ => 0 };
        var limit = new Option<int?>("--limit") { Description = "Use only the first N training images" };
        var testLimit = new Option<int?>("--test-limit") { Description = "Use only the first N test images" };
        var device = new Option<string>("--device") { Description = "cpu | cuda | cuda:N", DefaultValueFactory = _ => "cpu" };
        var libtorch = new Option<string?>("--libtorch") { Description = "Folder of a CUDA libtorch (e.g. a PyTorch install's torch/lib)" };
        var threads = new Option<int?>("--threads") { Description = "CPU threads (default: all cores)" };

        var command = new Command("lincls", "Linear evaluation (moco-v3 main_lincls.py): train a linear head on the frozen backbone, report test top-1/top-5")
        {
            checkpoint, arch, from, data, dataset, epochs, batch, lr, output, cropMin, evalCrop, seed, limit, testLimit, device, libtorch, threads,
        };
        command.SetAction(r => CliErrors.Run(() =>
        {
            string? archName = r.GetValue(arch);
            string fromName = r.GetValue(from)!;
            var options = new LinclsOptions
            {
                Checkpoint = r.GetValue(checkpoint)!,
                Arch = archName is null ? null : PresetCatalog.Get(archName),
                Format = fromName == "auto" ? null : Enum.Parse<CheckpointFormat>(fromName, ignoreCase: true),
                RunDir = r.GetValue(output)!,
                Data = r.GetValue(data),
                DatasetKind = r.GetValue(dataset)!,
                Epochs = r.GetValue(epochs),
                Batch = r.GetValue(batch),
                BaseLr = r.GetValue(lr),
                CropMin = r.GetValue(cropMin),
                EvalCropRatio = r.GetValue(evalCrop),
                Seed = r.GetValue(seed),
                Limit = r.GetValue(limit),
                TestLimit = r.GetValue(testLimit),
                Device = r.GetValue(device)!,
                LibTorch = r.GetValue(libtorch),
                Threads = r.GetValue(threads),
            };
            var evaluator = new LinearEvaluator();
            evaluator.Info += Console.WriteLine;
            evaluator.EpochDone += e => Console.WriteLine(FormattableString.Invariant(
                $"epoch {e.Epoch}/{e.Epochs} loss {e.Loss:F4} lr {e.Lr:G4} top1 {e.Top1:F2} top5 {e.Top5:F2} elapsed {e.ElapsedSeconds:F0}s"));
            var result = evaluator.Run(options);
            Console.WriteLine(FormattableString.Invariant(
                $"top1={result.Top1:F2} top5={result.Top5:F2} best_top1={result.BestTop1:F2} (test images: {result.TestCount})"));
            Console.WriteLine($"wrote {result.Checkpoint} (export the classifier with: mocov3 export --checkpoint {result.Checkpoint} " +
                              $"--arch {Path.Combine(Path.GetDirectoryName(result.Checkpoint)!, ClassifierCheckpoint.PresetName)} --head)");
            return 0;
        }));
        return command;
    }
}
