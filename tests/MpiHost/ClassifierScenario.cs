using System.Globalization;
using System.Text;
using System.Text.Json;
using MoCoV3.Distributed;
using MoCoV3.Eval.FineTune;
using MoCoV3.Eval.LinearEval;

/// <summary>
/// MpiHost lincls OUT CHECKPOINT global|per-rank
/// MpiHost finetune OUT CHECKPOINT DROP_PATH sync|local-bn|per-rank
/// : linear evaluation (2 epochs, global batch 32 of the first 99 training images, 51 test images) or fine-tuning (4 steps,
/// global batch 8 of the first 32 images, lr 1e-3, Mixup/CutMix on, 21 test images, ONNX export) of CHECKPOINT on the ranks
/// of this job, one thread, seed 5, rank 0 writing to OUT: the settings of the command lines DataParallelClassifierTests
/// runs, so that the controls differ from them in one thing only. <c>per-rank</c> draws each rank's augmentation for its
/// slice as a batch of its own, <c>local-bn</c> keeps per-rank BatchNorm statistics. Prints one JSON line per rank.
/// </summary>
internal static class ClassifierScenario
{
    public static int Run(string command, string[] args)
    {
        bool lincls = command == "lincls";
        double dropPath = 0;
        if ((lincls && (args.Length != 3 || args[2] is not ("global" or "per-rank")))
            || (!lincls && (args.Length != 4 || !double.TryParse(args[2], CultureInfo.InvariantCulture, out dropPath) || args[3] is not ("sync" or "local-bn" or "per-rank"))))
        {
            Console.Error.WriteLine("usage: MpiHost lincls OUT CHECKPOINT global|per-rank | MpiHost finetune OUT CHECKPOINT DROP_PATH sync|local-bn|per-rank");
            return 1;
        }
        string mode = args[^1];
        using var context = DistributedContext.Open();
        var report = new Dictionary<string, object> { ["rank"] = context.Rank, ["size"] = context.Size };
        if (lincls)
        {
            var evaluator = new LinearEvaluator { Communicator = context.Communicator, PerRankAugmentation = mode == "per-rank" };
            var result = evaluator.Run(new LinclsOptions
            {
                Weights = new() { Checkpoint = args[1] }, OutputDir = args[0], Epochs = 2, Batch = 32, Seed = 5,
                Data = new() { Limit = 99, TestLimit = 51 }, Compute = new() { Threads = 1 },
            });
            report["losses"] = result.History.Select(e => e.Loss).ToList();
            report["top1"] = result.History.Select(e => e.Top1).ToList();
        }
        else
        {
            var tuner = new FineTuner { Communicator = context.Communicator, SyncBatchNorm = mode != "local-bn", PerRankAugmentation = mode == "per-rank" };
            var result = tuner.Run(new FineTuneOptions
            {
                Weights = new() { Checkpoint = args[1] }, OnnxPath = Path.Combine(args[0], "classifier.onnx"), OutputDir = args[0],
                MaxSteps = 4, Batch = 8, Lr = 1e-3, DropPath = dropPath, LogEvery = 1, Seed = 5,
                Data = new() { Limit = 32, TestLimit = 21 }, Compute = new() { Threads = 1 },
            });
            report["losses"] = result.Losses;
            report["top1"] = result.Test.Top1;
            report["verified"] = result.Verify is not null;
        }
        context.Communicator.Barrier();
        using (var stdout = Console.OpenStandardOutput())
            stdout.Write(Encoding.UTF8.GetBytes(JsonSerializer.Serialize(report) + "\n"));
        return 0;
    }
}
