using System.CommandLine;
using MoCoV3.Distributed;
using MoCoV3.Evaluation;
using MoCoV3.Models;
using MoCoV3.Training;

namespace MoCoV3.Cli.Commands;

internal static class PretrainCommand
{
    public static Command Create()
    {
        var preset = new Option<string>("--preset") { Description = "Preset name (see `mocov3 presets`) or a preset JSON file", Required = true };
        var data = new Option<string?>("--data") { Description = "Dataset folder or CSV manifest (default: /usr/share/datasets/fashion-mnist)" };
        var dataset = new Option<string>("--dataset") { Description = "auto | fashion-mnist | imagefolder | csv", DefaultValueFactory = _ => "auto" };
        var epochs = new Option<double?>("--epochs") { Description = "Run length in epochs (default: the preset's)" };
        var maxSteps = new Option<long?>("--max-steps") { Description = "Run length in optimiser steps" };
        var minutes = new Option<double?>("--minutes") { Description = "Time budget: the schedules are fitted to it after timing the first steps" };
        var batch = new Option<int?>("--batch") { Description = "Batch size (default: the preset's)" };
        var lr = new Option<double?>("--lr") { Description = "Peak learning rate (default: base_lr x batch / 256)" };
        var warmup = new Option<double?>("--warmup-epochs") { Description = "Warmup length (default: the preset's, shortened in proportion for short runs)" };
        var device = new Option<string>("--device") { Description = "cpu | cuda | cuda:N", DefaultValueFactory = _ => "cpu" };
        var libtorch = new Option<string?>("--libtorch") { Description = "Folder of a CUDA libtorch (e.g. a PyTorch install's torch/lib)" };
        var amp = AmpOption.Create();
        var threads = new Option<int?>("--threads") { Description = "CPU threads (default: all cores)" };
        var output = new Option<string>("--out") { Description = "Run folder", DefaultValueFactory = _ => "runs/pretrain" };
        var resume = new Option<string?>("--resume") { Description = "Run folder or checkpoint to continue, or 'auto'" };
        var init = new Option<string?>("--init") { Description = "Initial weights: a toolkit checkpoint, an official moco-v3 .pth.tar, or a torch.save/.safetensors file in the official, timm, torchvision or MMSelfSup layout (those three: backbone only)" };
        var augment = new Option<string>("--augment") { Description = string.Join(" | ", JsonEnum.Names<AugmentationRecipe>()), DefaultValueFactory = _ => AugmentationRecipe.MoCoV3.Name() };
        augment.AcceptOnlyFromAmong([.. JsonEnum.Names<AugmentationRecipe>()]);
        var seed = new Option<long>("--seed") { Description = "Random seed", DefaultValueFactory = _ => 0 };
        var logEvery = new Option<int>("--log-every") { Description = "Steps between metrics rows", DefaultValueFactory = _ => 10 };
        var saveEvery = new Option<long?>("--save-every") { Description = "Steps between checkpoints (default: every epoch)" };
        var limit = new Option<int?>("--limit") { Description = "Use only the first N training images" };
        var knnEvery = new Option<long?>("--knn-every") { Description = "Steps between kNN evaluations of the backbone on the data's test split (and one at the end)" };
        var knnTrain = new Option<int>("--knn-train") { Description = "Train images in the kNN bank", DefaultValueFactory = _ => 10000 };
        var knnTest = new Option<int>("--knn-test") { Description = "Test images classified by kNN", DefaultValueFactory = _ => 2000 };
        var knnK = new Option<int>("--knn-k") { Description = "Neighbours that vote", DefaultValueFactory = _ => KnnClassifier.DefaultK };
        var clipGrad = new Option<double?>("--clip-grad") { Description = "Clip the joint gradient norm to this before each step (default: no clipping)" };
        var onNan = new Option<string>("--on-nan") { Description = "stop | rollback: on a NaN/inf loss, stop, or reload the last checkpoint and halve the lr", DefaultValueFactory = _ => OnNanPolicy.Stop.Name() };
        onNan.AcceptOnlyFromAmong([.. JsonEnum.Names<OnNanPolicy>()]);
        var rankTimeout = new Option<double?>("--rank-timeout")
        {
            Description = $"Data-parallel runs: seconds a rank waits in one collective before it ends the job, naming the ranks that do not answer " +
                          $"(default: ${RankTimeout.EnvironmentVariable}, else {RankTimeout.DefaultSeconds:G}; 0: forever)",
        };
        var spikeFactor = new Option<double>("--spike-factor") { Description = "Warn when the loss or a gradient norm exceeds this many times its running median", DefaultValueFactory = _ => InstabilityMonitor.DefaultSpikeFactor };

        var command = new Command("pretrain", "Pretrain a MoCo v3 encoder")
        {
            preset, data, dataset, epochs, maxSteps, minutes, batch, lr, warmup, device, libtorch, amp, threads, output, resume, init,
            augment, seed, logEvery, saveEvery, limit, knnEvery, knnTrain, knnTest, knnK, clipGrad, onNan, spikeFactor, rankTimeout,
        };
        command.SetAction(r => CliErrors.Run(() =>
        {
            var options = new PretrainOptions
            {
                OutputDir = r.GetValue(output)!,
                Data = new() { Path = r.GetValue(data), Kind = r.GetValue(dataset)!, Limit = r.GetValue(limit) },
                Epochs = r.GetValue(epochs),
                MaxSteps = r.GetValue(maxSteps),
                Minutes = r.GetValue(minutes),
                Batch = r.GetValue(batch),
                Lr = r.GetValue(lr),
                WarmupEpochs = r.GetValue(warmup),
                Compute = new() { Device = r.GetValue(device)!, LibTorch = r.GetValue(libtorch), Threads = r.GetValue(threads) },
                Amp = r.GetValue(amp),
                Resume = r.GetValue(resume),
                Init = r.GetValue(init),
                Augment = JsonEnum.Parse<AugmentationRecipe>(r.GetValue(augment), "--augment"),
                Seed = r.GetValue(seed),
                LogEvery = Math.Max(1, r.GetValue(logEvery)),
                SaveEvery = r.GetValue(saveEvery),
                KnnEvery = r.GetValue(knnEvery),
                KnnTrain = r.GetValue(knnTrain),
                KnnTest = r.GetValue(knnTest),
                KnnK = r.GetValue(knnK),
                ClipGrad = r.GetValue(clipGrad),
                OnNan = JsonEnum.Parse<OnNanPolicy>(r.GetValue(onNan), "--on-nan"),
                SpikeFactor = r.GetValue(spikeFactor),
            };
            return Run(PresetCatalog.Get(r.GetValue(preset)!), options, r.GetValue(rankTimeout));
        }));
        return command;
    }

    private static int Run(ModelPreset preset, PretrainOptions options, double? rankTimeout)
    {
        // Under mpirun / mpiexec every rank runs this command: a data-parallel run over MPI's world, --batch the global batch.
        // With --device cuda: NCCL for tensors, and plain cuda is cuda:LOCAL_RANK.
        using var context = DistributedContext.Open(rankTimeoutSeconds: rankTimeout, compute: options.Compute);
        options = options with { Compute = options.Compute with { Device = context.RankDevice(options.Compute.Device) } };
        var trainer = new Pretrainer { Communicator = context.Communicator };
        PretrainResult result;
        try
        {
            result = PretrainProgress.Run(trainer, cancel => trainer.Run(preset, options, cancel));
        }
        catch (Exception e) when (context.Size > 1 && e is not NonFiniteLossException)
        {
            // This rank failed on its own (its data, its disk, a bug): the others would wait for it in their next collective.
            // A NaN/inf loss is every rank's decision (the loss is averaged over ranks): those ranks end together, without this.
            int? code = CliErrors.CodeOf(e);
            Console.Error.WriteLine($"error: rank {context.Rank} of {context.Size}: {(code is null ? e.ToString() : e.Message)}; ending the job ({(context.Launch.Launcher == Launcher.Torchrun ? "exit; the launcher ends the other ranks" : "MPI_Abort")})");
            context.Abort(code ?? CliErrors.Unexpected);
            throw;
        }

        if (context.Rank != 0) return result.Interrupted ? CliErrors.Interrupted : 0; // rank 0 reports
        if (result.Interrupted)
        {
            Console.Error.WriteLine($"stopped at step {result.Steps}; checkpoint {result.Checkpoint}. Continue with: {ResumeCommand()}");
            return CliErrors.Interrupted;
        }
        Console.WriteLine($"done: {result.Steps} steps ({result.Plan.Epochs:F2} epochs) in {result.ElapsedSeconds:F0}s; checkpoint {result.Checkpoint}");
        return 0;
    }

    /// <summary>This command line with <c>--resume auto</c> (the data, --limit and --out must stay the same to continue).</summary>
    internal static string ResumeCommand()
    {
        var args = Environment.GetCommandLineArgs().Skip(1).ToList();
        int resume = args.IndexOf("--resume");
        if (resume >= 0) args.RemoveRange(resume, Math.Min(2, args.Count - resume));
        args.RemoveAll(a => a.StartsWith("--resume=", StringComparison.Ordinal));
        static string Quote(string a) => a.Length > 0 && a.All(c => char.IsLetterOrDigit(c) || "-_./:=,+@".Contains(c)) ? a : "'" + a.Replace("'", "'\\''") + "'";
        return "mocov3 " + string.Join(' ', args.Append("--resume").Append("auto").Select(Quote));
    }
}
