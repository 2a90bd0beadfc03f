using System.Diagnostics;
using System.Text.Json;
using MoCoV3.IO;
using MoCoV3.Augment;
using MoCoV3.Data;
using MoCoV3.Distributed;
using MoCoV3.Eval.Classification;
using MoCoV3.Checkpoints;
using MoCoV3.Models;
using MoCoV3.Runtime;
using MoCoV3.Training;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MoCoV3.Eval.LinearEval;

/// <summary>
/// The linear-evaluation protocol of moco-v3's <c>main_lincls.py</c>: the pretrained backbone is frozen and kept in
/// <b>eval mode</b> the whole time (no gradients, BatchNorm running statistics untouched); its feature (ViT: the class
/// token after the final norm; ResNet: the global average pool) feeds a linear head initialised N(0, 0.01), bias 0,
/// trained by SGD (momentum 0.9, no weight decay) with a per-epoch cosine lr; test top-1/top-5 after every epoch.
/// At the end the backbone is checked against the weights it started from (the official <c>sanity_check</c>), and
/// backbone + head are saved in timm/torchvision layout (<c>mocov3 export --head</c> exports them).
/// Data-parallel (<see cref="Communicator"/> of several ranks, e.g. under <c>mpirun</c>): <see cref="LinclsOptions.Batch"/>
/// is the global batch, split evenly over the ranks (the last, smaller batch of an epoch as evenly as it goes, each rank's
/// loss weighted by its share of the rows); every rank draws the crops one process draws for the whole batch and applies
/// its rows'; the backbone and head start as rank 0's; the head's gradients are averaged before the SGD step; every rank
/// tests its share of the test set and the hits are summed. The backbone stays frozen in eval mode, so no BatchNorm is
/// synchronised. Rank 0 alone writes metrics.csv, the checkpoint, the ONNX classifier and results.json and raises the events.
/// </summary>
public sealed class LinearEvaluator
{
    /// <summary>
    /// The ranks this run trains on: one process by default; several (MPI's world under <c>mpirun</c>, see
    /// <see cref="DistributedContext"/>) make it data-parallel. Only rank 0 raises the events.
    /// </summary>
    public ICommunicator Communicator { get; init; } = new SingleProcessCommunicator();

    /// <summary>
    /// Data-parallel control for tests: each rank draws the crops of its slice as a batch of its own (not keyed by the row
    /// in the global batch), which does not train like one process.
    /// </summary>
    internal bool PerRankAugmentation { get; init; }

    public event Action<string>? Info;

    /// <summary>Raised after each epoch's test evaluation.</summary>
    public event Action<LinclsEpoch>? EpochDone;

    private static void Validate(LinclsOptions o)
    {
        ArgumentNullException.ThrowIfNull(o);
        if (o.Epochs < 1) throw new ArgumentException($"--epochs must be positive, found {o.Epochs}");
        if (o.Batch < 1 || o.EvalBatch < 1) throw new ArgumentException($"--batch must be positive, found {o.Batch}");
        if (o.BaseLr is <= 0) throw new ArgumentException($"--lr must be positive, found {o.BaseLr}");
        if (o.VerifyBatch < 1) throw new ArgumentException($"the verify batch must be positive, found {o.VerifyBatch}");
        if (o.OnnxPath is { } onnx && !Path.GetExtension(onnx).Equals(".onnx", StringComparison.OrdinalIgnoreCase))
            throw new ArgumentException($"{onnx}: --onnx is the ONNX classifier to write and should end in .onnx");
    }

    public LinclsResult Run(LinclsOptions o)
    {
        Validate(o);
        var ranks = Communicator;
        bool parallel = ranks.Size > 1, root = ranks.Rank == 0;
        void OnInfo(string message) { if (root) Info?.Invoke(message); }
        ClassifierRanks.CheckBatch(ranks, o.Batch);
        using var run = ClassifierRun.Start(o.Weights, o.Data, o.Compute, o.OutputDir, o.Seed, OnInfo);
        var (device, preset, train, test, classes) = (run.Device, run.Preset, run.Train, run.Test, run.Classes);
        ClassifierRanks.CheckDevice(ranks, device, "lincls");
        var backbone = run.Backbone;
        backbone.to(device);
        Freeze(backbone);
        // The head reads the embedding the probe and kNN read (the class token for every official preset, so this is the
        // official protocol there; wider for presets such as vit-tiny-fmnist-quick's cls+mean@last4).
        using var head = NewHead(backbone.EmbeddingDim, classes);
        head.to(device);
        if (parallel)
        {
            ModelBroadcast.FromRoot(backbone, ranks); // every rank starts from rank 0's weights
            ModelBroadcast.FromRoot(head, ranks);
        }
        var initial = Snapshot(backbone);

        var settings = LinclsSettings.Resolve(o, preset);
        if (settings.MissedShippedSettings.Count > 0)
            OnInfo($"note: {o.Weights.Checkpoint} records preset '{preset.Name}' without the linear-eval settings the shipped preset has " +
                   $"({string.Join(", ", settings.MissedShippedSettings)}; saved before presets had them): pass --arch {preset.Name} to use them");
        double baseLr = settings.BaseLr, peakLr = settings.PeakLr;
        using var optimizer = optim.SGD(head.parameters(), peakLr, momentum: o.Momentum, weight_decay: o.WeightDecay);
        using var averager = parallel ? new GradientAverager(head.parameters(), ranks) : null;
        var transforms = new ImageTransforms(preset, settings.CropMin, settings.EvalCrop);
        OnInfo(FormattableString.Invariant(
            $"linear eval of {preset.Name} ({backbone.EmbeddingDim}-d embedding, frozen, eval mode) on {train.Source} ({train.Count} images, {classes} classes), ") +
            FormattableString.Invariant($"{TorchRuntime.Describe(device)}: {o.Epochs} epochs, batch {o.Batch}, lr {baseLr} ({settings.BaseLrSource}) x {o.Batch}/256 = {peakLr:G4}, SGD momentum {o.Momentum}, wd {o.WeightDecay}, ") +
            FormattableString.Invariant($"crops: random-resized from {settings.CropMin} of the area, test centre {settings.EvalCrop}"));

        using var stats = settings.Standardize ? FeatureStatistics.Measure(backbone, train, transforms.Eval, o.EvalBatch, device, StatisticsImages, ranks) : null;
        if (stats is not null)
            OnInfo($"features standardised by their mean and std over {stats.Count} training images (eval view); folded into the head at the end");
        Tensor Logits(Tensor features) => head.forward(stats is null ? features : stats.Standardize(features));
        if (parallel)
            OnInfo($"data-parallel over {ranks.Size} ranks ({ranks.Description}): {o.Batch / ranks.Size} images per rank of each global batch of {o.Batch}");

        var history = new List<LinclsEpoch>();
        var clock = Stopwatch.StartNew();
        using (var log = root ? new CsvLog(Path.Combine(o.OutputDir, "metrics.csv"), "epoch", "loss", "lr", "top1", "top5", "elapsed_s") : null)
        // Data-parallel: each rank reads and decodes its own rows of every global batch alone.
        using (var loader = new PrefetchLoader(train, Math.Min(o.Batch, train.Count), o.Seed, shuffle: true, dropLast: false,
                   share: parallel ? new RankShare(ranks.Rank, ranks.Size) : null))
        {
            for (int epoch = 0; epoch < o.Epochs; epoch++)
            {
                // main_lincls.py adjust_learning_rate: cosine over epochs, set at the start of each epoch.
                double lr = peakLr * 0.5 * (1 + Math.Cos(Math.PI * epoch / o.Epochs));
                foreach (var group in optimizer.ParamGroups) group.LearningRate = lr;
                double lossSum = 0;
                long seen = 0;
                int stepInEpoch = 0;
                foreach (var data in loader.Epoch(epoch))
                {
                    using var batch = data;
                    using var scope = NewDisposeScope();
                    var rng = new Random(SeedSequence.Derive(o.Seed, epoch, stepInEpoch++, 4));
                    // This rank's rows, all the loader read: the global batch's share (the last batch of an epoch may split unevenly, even leave a rank none).
                    var rows = batch.Rows;
                    double rowsLoss = 0; // Σ of the per-image losses of this rank's rows
                    optimizer.zero_grad();
                    if (rows.Count > 0)
                    {
                        var pixels = batch.Pixels.to(device);
                        var labels = batch.Labels.to(device);
                        var x = rows.IsWhole || PerRankAugmentation ? transforms.Train(pixels, rng) : transforms.Train(pixels, rng, (rows.Offset, rows.GlobalCount));
                        Tensor features;
                        using (no_grad()) features = backbone.Embed(x);
                        var loss = nn.functional.cross_entropy(Logits(features), labels);
                        // The mean over the global batch is Σ_ranks (rows/batch)·(this rank's mean); the averager divides by the ranks.
                        double weight = (double)((long)rows.Count * ranks.Size) / rows.GlobalCount;
                        (weight == 1 ? loss : loss * weight).backward();
                        rowsLoss = loss.item<float>() * (double)rows.Count;
                    }
                    averager?.Average();
                    optimizer.step();
                    double batchLoss = ClassifierRanks.Sum(ranks, rowsLoss); // the same on every rank, so all stop together on a NaN
                    double value = batchLoss / rows.GlobalCount;
                    if (!double.IsFinite(value)) throw new NonFiniteLossException(epoch * (long)loader.StepsPerEpoch + stepInEpoch, value, null);
                    lossSum += batchLoss;
                    seen += rows.GlobalCount;
                }
                var accuracy = ClassifierEvaluation.Run(test, o.EvalBatch, device, transforms.Eval, t => Logits(backbone.Embed(t)), ranks);
                var row = new LinclsEpoch(epoch + 1, o.Epochs, lossSum / seen, lr, accuracy.Top1, accuracy.Top5, clock.Elapsed.TotalSeconds);
                history.Add(row);
                log?.Write(row.Epoch, row.Loss, row.Lr, row.Top1, row.Top5, row.ElapsedSeconds);
                if (root) EpochDone?.Invoke(row);
            }
        }

        stats?.FoldInto(head); // from here on the head reads the raw embedding, as every exported classifier does

        SanityCheck(backbone, initial, o.Weights.Checkpoint);
        foreach (var t in initial.Values) t.Dispose();
        var model = new BackboneClassifier(backbone, head);
        if (!root) // rank 0 writes the files; the others are done
            return new LinclsResult { History = history, TestCount = test.Count, Checkpoint = run.CheckpointPath, ElapsedSeconds = clock.Elapsed.TotalSeconds, OnnxPath = o.OnnxPath };
        string checkpoint = run.SaveCheckpoint(model);
        double seconds = clock.Elapsed.TotalSeconds;
        ClassifierVerifyResult? verify = null;
        if (o.OnnxPath is not null)
        {
            var last = history[^1];
            verify = run.ExportAndVerify(model, o.OnnxPath, "mocov3.lincls", FormattableString.Invariant(
                $"{o.Epochs} epochs, batch {o.Batch}, lr {baseLr} x {o.Batch}/256, test top1 {last.Top1:F2} on {test.Count} images of {test.Source}"), o.VerifyBatch);
            OnInfo($"exported {o.OnnxPath} ({classes} classes: {string.Join(", ", train.ClassNames.Take(5))}{(classes > 5 ? ", …" : "")})");
        }
        var result = new LinclsResult
        {
            History = history, TestCount = test.Count, Checkpoint = checkpoint, ElapsedSeconds = seconds, OnnxPath = o.OnnxPath, Verify = verify,
        };
        run.WriteResults(new
        {
            top1 = result.Top1, top5 = result.Top5, best_top1 = result.BestTop1, epochs = o.Epochs, batch = o.Batch, base_lr = baseLr,
            base_lr_from = settings.BaseLrSource, lr = peakLr, crop_min = settings.CropMin, eval_crop = settings.EvalCrop, standardized = stats is not null, test_images = result.TestCount, train_images = train.Count, seconds = result.ElapsedSeconds,
            preset = preset.Name, checkpoint = o.Weights.Checkpoint, onnx = o.OnnxPath, logits_max_abs_diff = verify?.Logits.MaxAbsDiff,
            embedding_max_abs_diff = verify?.Embedding.MaxAbsDiff, verify_passed = verify?.Passed,
        });
        return result;
    }

    /// <summary>Training images the standardisation statistics are measured on (the first ones of the training set).</summary>
    private const int StatisticsImages = 10_000;

    /// <summary>The official head init: weight N(0, 0.01), bias 0.</summary>
    public static Linear NewHead(int features, int classes)
    {
        var head = nn.Linear(features, classes);
        using (no_grad())
        {
            nn.init.normal_(head.weight!, mean: 0, std: 0.01);
            nn.init.zeros_(head.bias!);
        }
        return head;
    }

    /// <summary>No gradients and eval mode (BatchNorm uses, and never updates, its running statistics).</summary>
    private static void Freeze(Backbone backbone)
    {
        foreach (var p in backbone.parameters()) p.requires_grad = false;
        backbone.eval();
    }

    private static Dictionary<string, Tensor> Snapshot(Backbone backbone)
    {
        using var scope = NewDisposeScope();   // owns the detach() temporaries
        using var noGrad = no_grad();
        return backbone.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone().DetachFromDisposeScope());
    }

    private static bool Same(Tensor a, Tensor b) => a.shape.SequenceEqual(b.shape) && a.eq(b).all().item<bool>();

    /// <summary>main_lincls.py's sanity_check: every backbone tensor (BatchNorm statistics included) is as loaded.</summary>
    private static void SanityCheck(Backbone backbone, Dictionary<string, Tensor> initial, string source)
    {
        using var scope = NewDisposeScope();
        var changed = backbone.state_dict().Where(kv => !Same(kv.Value, initial[kv.Key])).Select(kv => kv.Key).ToList();
        if (changed.Count > 0)
            throw new InvalidOperationException(
                $"linear eval changed {changed.Count} frozen backbone tensors of {source} ({string.Join(", ", changed.Take(5))}): the backbone must stay fixed");
    }
}
