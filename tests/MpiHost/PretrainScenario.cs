using System.Text;
using System.Text.Json;
using MoCoV3.Distributed;
using MoCoV3.Models;
using MoCoV3.Training;

/// <summary>
/// MpiHost pretrain OUT BATCH sync|local [LR] [vit|resnet] [DATA] [amp] [minutes=M] : 8 steps (or M minutes) of MoCo v3
/// pretraining (a micro vit-tiny-fmnist, full augmentation, lr &gt; 0, clipping, one thread) on the ranks of this job at global
/// batch BATCH (of Fashion-MNIST, or of the image folder DATA, whose views the loaders cut), rank 0 writing metrics.csv and
/// the checkpoint to OUT; <c>amp</c> trains under bf16 autocast. <c>local</c> keeps per-rank BatchNorm statistics in the heads
/// (the control). Prints one JSON line per rank.
/// </summary>
internal static class PretrainScenario
{
    /// <summary>vit-tiny-fmnist shrunk so 8 steps take seconds on one thread.</summary>
    public static ModelPreset Vit => PresetCatalog.Get("vit-tiny-fmnist")
        .WithVit(vit => vit with { EmbedDim = 32, Depth = 1, Heads = 2 })
        .WithHeads(heads => heads with { HiddenDim = 64, OutDim = 32 }) with
    {
        Name = "micro-vit-fmnist",
    };

    /// <summary>resnet18-fmnist shrunk (one block per stage, 16×16 views, narrow heads): BatchNorm2d in every block and downsample.</summary>
    public static ModelPreset ResNet => PresetCatalog.Get("resnet18-fmnist")
        .WithResNet(resnet => resnet with { Layers = [1, 1, 1, 1] })
        .WithHeads(heads => heads with { HiddenDim = 64, OutDim = 32 })
        .WithInput(input => input with { ImageSize = 16 }) with
    {
        Name = "micro-resnet-fmnist",
    };

    public static int Run(string[] args)
    {
        // Flags after the positional arguments: amp (bf16 autocast), minutes=M (a --minutes run instead of 8 steps).
        var flags = args.SkipWhile(a => a != "amp" && !a.StartsWith("minutes=", StringComparison.Ordinal)).ToList();
        args = args[..^flags.Count];
        double lr = 5e-3, minutes = 0;
        if (args.Length is not (3 or 4 or 5 or 6) || !int.TryParse(args[1], out int batch) || args[2] is not ("sync" or "local")
            || (args.Length >= 4 && !double.TryParse(args[3], System.Globalization.CultureInfo.InvariantCulture, out lr))
            || (args.Length >= 5 && args[4] is not ("vit" or "resnet"))
            || flags.Any(f => f != "amp" && !(f.StartsWith("minutes=", StringComparison.Ordinal)
                && double.TryParse(f["minutes=".Length..], System.Globalization.CultureInfo.InvariantCulture, out minutes))))
        {
            Console.Error.WriteLine("usage: MpiHost pretrain OUT BATCH sync|local [LR] [vit|resnet] [DATA] [amp] [minutes=M]");
            return 1;
        }
        using var context = DistributedContext.Open();
        var options = new PretrainOptions
        {
            OutputDir = args[0], Batch = batch, MaxSteps = minutes > 0 ? null : 8, Minutes = minutes > 0 ? minutes : null, Lr = lr,
            WarmupEpochs = 0, LogEvery = 1, SaveEvery = 100, Seed = 3, TensorBoard = false, ClipGrad = 1.0,
            Data = new() { Path = args.Length == 6 ? args[5] : null, Limit = 256 }, Compute = new() { Threads = 1 }, Amp = flags.Contains("amp"),
        };
        var trainer = new Pretrainer { Communicator = context.Communicator, SyncBatchNorm = args[2] == "sync" };
        var result = trainer.Run(args.Length >= 5 && args[4] == "resnet" ? ResNet : Vit, options);
        context.Communicator.Barrier();
        var report = new Dictionary<string, object> { ["rank"] = context.Rank, ["size"] = context.Size, ["steps"] = result.Steps };
        using (var stdout = Console.OpenStandardOutput())
            stdout.Write(Encoding.UTF8.GetBytes(JsonSerializer.Serialize(report) + "\n"));
        return 0;
    }
}
