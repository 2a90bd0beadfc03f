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

namespace MoCoV3.Eval.FineTune;

/// <summary>
/// End-to-end fine-tuning of a pretrained backbone with a new linear head (DeiT recipe, see <see cref="FineTuneOptions"/>),
/// then test accuracy, a checkpoint, and the classifier exported to ONNX and checked against TorchSharp.
/// The path of one batch: uint8 images → RandomResizedCrop + flip (<see cref="ImageTransforms"/>) → Mixup/CutMix
/// (<see cref="MixupCutmix"/>) → backbone (drop path on, patch projection and position embedding trainable) → head →
/// soft-target cross-entropy (<see cref="ClassificationLoss"/>) → AdamW at the step's lr (<see cref="FineTuneSchedule"/>).
/// Works for ViTs (the recipe's target) and ResNets (no drop path).
/// Data-parallel (<see cref="Communicator"/> of several ranks, e.g. under <c>mpirun</c>): <see cref="FineTuneOptions.Batch"/>
/// is the global batch, split evenly over the ranks (<see cref="BatchSlice"/>); every rank draws the crops, the Mixup/CutMix
/// mixing and the drop-path masks one process draws for the whole batch and applies its rows' (an image's Mixup/CutMix
/// partner is the mirrored row of the global batch, augmented alike on the rank that needs it); the model starts as rank
/// 0's; a ResNet's BatchNorms normalise over the global batch (SyncBatchNorm); gradients are averaged before the AdamW
/// step. Every rank tests its share of the test set and the hits are summed; rank 0 alone writes metrics.csv, the
/// checkpoint, the ONNX classifier and results.json and raises the events. The logged loss is the mean over the ranks.
/// </summary>
public sealed class FineTuner
{
    /// <summary>
    /// The ranks this run trains on: one process by default; several (MPI's world under <c>mpirun</c>, see
    /// <see cref="DistributedContext"/>) make it data-parallel. Only rank 0 raises the events.
    /// </summary>
    public ICommunicator Communicator { get; init; } = new SingleProcessCommunicator();

    /// <summary>
    /// Data-parallel runs: a ResNet's BatchNorms normalise over the global batch (true, <c>convert_sync_batchnorm</c>), or
    /// each rank over its own slice (false: DDP without it, which does not train like one process; a control for tests).
    /// </summary>
    public bool SyncBatchNorm { get; init; } = true;

    /// <summary>
    /// Data-parallel control for tests: each rank draws the crops and the mixing of its slice as a batch of its own (the
    /// partner of a Mixup/CutMix image in the rank's own slice, as DeiT under DDP), which does not train like one process.
    /// </summary>
    internal bool PerRankAugmentation { get; init; }

    /// <summary>Notes about the run (import report, plan, files).</summary>
    public event Action<string>? Info;

    /// <summary>Raised for every logged step, after it is written to metrics.csv.</summary>
    public event Action<FineTuneLogRow>? Logged;

    public FineTuneResult Run(FineTuneOptions o)
    {
        ArgumentNullException.ThrowIfNull(o);
        Validate(o);
        var ranks = Communicator;
        bool parallel = ranks.Size > 1, root = ranks.Rank == 0;
        void OnInfo(string message) { if (root) Info?.Invoke(message); }
        var slice = BatchSlice.Of(o.Batch, ranks.Rank, ranks.Size); // refuses a global batch that does not split over the ranks
        using var run = ClassifierRun.Start(o.Weights, o.Data, o.Compute, o.OutputDir, o.Seed, OnInfo);
        var (device, preset, train, test, classes) = (run.Device, run.Preset, run.Train, run.Test, run.Classes);
        ClassifierRanks.CheckDevice(ranks, device, "finetune");
        if (o.Batch > train.Count)
            throw new ArgumentException($"{train.Source}: {train.Count} training images, fewer than one batch of {o.Batch}; use a smaller --batch");

        var backbone = run.Backbone;
        // Fine-tuning trains everything: the patch projection frozen in pretraining and the fixed sin-cos position
        // embedding (DeiT learns it, starting from the pretrained values) included.
        foreach (var p in backbone.parameters()) p.requires_grad = true;
        if (backbone is VisionTransformer vit) vit.SetDropPath(o.DropPath);
        else if (o.DropPath > 0) OnInfo($"drop path {o.DropPath} applies to ViTs only; '{preset.Name}' is a {preset.Arch.Name()}: not used");
        using var head = NewHead(backbone.FeatureDim, classes);
        var model = new BackboneClassifier(backbone, head);
        model.to(device);
        if (parallel)
        {
            ModelBroadcast.FromRoot(model, ranks); // every rank starts from rank 0's weights (and BatchNorm statistics)
            if (SyncBatchNorm) backbone.BatchNormRanks = ranks; // a ViT has none
            if (backbone is VisionTransformer sliced && !PerRankAugmentation) sliced.SetDropPathRows((slice.Offset, slice.GlobalCount));
        }

        int stepsPerEpoch = train.Count / o.Batch;
        long total = o.MaxSteps ?? (long)Math.Ceiling((o.Epochs ?? FineTuneOptions.DefaultEpochs) * stepsPerEpoch);
        if (total < 1) throw new ArgumentException("the run has no steps: check --epochs / --max-steps");
        double peakLr = o.Lr ?? FineTuneSchedule.ScaledLearningRate(o.BaseLr, o.Batch);
        var schedule = Plan(o, peakLr, total, stepsPerEpoch);
        bool planFixed = o.Minutes is null;
        var budget = planFixed ? null : new TimeBudget(o.Minutes!.Value);   // the same step timing as pretraining (rank 0's clock decides)

        var (decay, noDecay) = WeightDecayGroups.Split(model);
        using var optimizer = optim.AdamW(
            [new AdamW.ParamGroup(decay, lr: peakLr, weight_decay: o.WeightDecay), new AdamW.ParamGroup(noDecay, lr: peakLr, weight_decay: 0)],
            peakLr);
        using var averager = parallel ? new GradientAverager(model.parameters(), ranks) : null;
        var transforms = new ImageTransforms(preset, o.CropMin, o.EvalCropRatio);
        var views = new FineTuneViews(transforms, new MixupCutmix(o.MixupAlpha, o.CutmixAlpha, o.MixSwitchProb, o.MixProb, o.LabelSmoothing),
                                      slice, o.Seed, classes, device, PerRankAugmentation);

        OnInfo($"fine-tune {preset.Name} on {train.Source} ({train.Count} images, {classes} classes), {TorchRuntime.Describe(device)}: " +
               $"batch {o.Batch}, {(planFixed ? $"{schedule.TotalSteps} steps ({(double)schedule.TotalSteps / stepsPerEpoch:F2} epochs)" : $"{o.Minutes} minutes")}, " +
               FormattableString.Invariant($"peak lr {peakLr:G3}, warmup {schedule.WarmupSteps} steps, wd {o.WeightDecay} ({decay.Count} decayed / {noDecay.Count} exempt tensors), ") +
               FormattableString.Invariant($"drop path {(backbone is VisionTransformer ? o.DropPath : 0)}, label smoothing {o.LabelSmoothing}, mixup {o.MixupAlpha} / cutmix {o.CutmixAlpha}"));
        if (parallel)
            OnInfo($"data-parallel over {ranks.Size} ranks ({ranks.Description}): {slice.Count} images per rank of each global batch of {o.Batch}" +
                   (SyncBatchNorm && backbone is ResNet ? ", BatchNorm synchronised" : ""));

        var losses = new List<double>();
        var clock = Stopwatch.StartNew();
        var sinceLog = Stopwatch.StartNew();
        long imagesSinceLog = 0, step = 0;
        using (var log = root ? new CsvLog(Path.Combine(o.OutputDir, "metrics.csv"), "step", "epoch", "loss", "lr", "img_per_s", "elapsed_s") : null)
        using (var loader = new PrefetchLoader(train, o.Batch, o.Seed, shuffle: true, dropLast: true, share: parallel ? new RankShare(ranks.Rank, ranks.Size) : null))
        using (var partnerLoader = PartnerLoader(views, slice, ranks, train, o))
        {
            model.train();
            while (step < schedule.TotalSteps)
            {
                foreach (var (data, partnerData) in Batches(loader, partnerLoader, (int)(step / stepsPerEpoch), (int)(step % stepsPerEpoch)))
                {
                    using var batch = data;
                    using var partners = partnerData;
                    using var scope = NewDisposeScope();
                    double lr = schedule.LearningRate(step);
                    foreach (var group in optimizer.ParamGroups) group.LearningRate = lr;

                    var (mixed, targets) = views.For(batch, step, partners);
                    var loss = ClassificationLoss.SoftTarget(model.forward(mixed), targets);
                    optimizer.zero_grad();
                    loss.backward();
                    averager?.Average();
                    optimizer.step();
                    step++;
                    imagesSinceLog += batch.GlobalCount;

                    if (!planFixed && budget!.OnStep(step, clock.Elapsed.TotalSeconds, clock.Elapsed.TotalSeconds, ranks) is long fitted)
                    {
                        schedule = Plan(o, peakLr, fitted, stepsPerEpoch);
                        planFixed = true;
                        OnInfo($"timed {budget.TimedSteps} steps ({budget.SecondsPerStep:F3} s/step): the {budget.Minutes} minute budget fits {fitted} steps " +
                               $"({(double)fitted / stepsPerEpoch:F2} epochs), warmup {schedule.WarmupSteps}");
                    }

                    bool last = step >= schedule.TotalSteps;
                    if (step % o.LogEvery == 0 || step == 1 || last)
                    {
                        // The mean over the ranks (the loss of the global batch), the same on every rank, so all stop together on a NaN.
                        double value = ClassifierRanks.Sum(ranks, loss.item<float>()) / ranks.Size;
                        if (!double.IsFinite(value)) throw new NonFiniteLossException(step, value, null);
                        losses.Add(value);
                        var row = new FineTuneLogRow(step, schedule.TotalSteps, (double)step / stepsPerEpoch, value, lr,
                            imagesSinceLog / Math.Max(sinceLog.Elapsed.TotalSeconds, 1e-9), clock.Elapsed.TotalSeconds);
                        log?.Write(row.Step, row.Epoch, row.Loss, row.Lr, row.ImagesPerSecond, row.ElapsedSeconds);
                        if (root) Logged?.Invoke(row);
                        sinceLog.Restart();
                        imagesSinceLog = 0;
                    }
                    if (last) break;
                }
            }
        }
        double trainSeconds = clock.Elapsed.TotalSeconds;

        model.eval();
        var accuracy = ClassifierEvaluation.Run(test, o.EvalBatch, device, transforms.Eval, model.forward, ranks);
        OnInfo(FormattableString.Invariant($"test: {accuracy.Count} images, top1 {accuracy.Top1:F2}%, top5 {accuracy.Top5:F2}%"));

        if (!root) // rank 0 writes the files; the others are done
            return new FineTuneResult
            {
                Steps = step, Epochs = (double)step / stepsPerEpoch, ElapsedSeconds = trainSeconds, Test = accuracy,
                Checkpoint = run.CheckpointPath, OnnxPath = o.OnnxPath, Verify = null, Losses = losses,
            };
        string checkpoint = run.SaveCheckpoint(model);
        var verify = run.ExportAndVerify(model, o.OnnxPath, "mocov3.finetune", FormattableString.Invariant(
            $"{step} steps, batch {o.Batch}, peak lr {peakLr:G3}, test top1 {accuracy.Top1:F2} on {accuracy.Count} images of {test.Source}"), o.VerifyBatch);

        var result = new FineTuneResult
        {
            Steps = step, Epochs = (double)step / stepsPerEpoch, ElapsedSeconds = trainSeconds, Test = accuracy,
            Checkpoint = checkpoint, OnnxPath = o.OnnxPath, Verify = verify, Losses = losses,
        };
        run.WriteResults(new
        {
            steps = step, epochs = result.Epochs, train_seconds = trainSeconds, top1 = accuracy.Top1, top5 = accuracy.Top5,
            test_images = accuracy.Count, onnx = o.OnnxPath, logits_max_abs_diff = verify.Logits.MaxAbsDiff,
            embedding_max_abs_diff = verify.Embedding.MaxAbsDiff, verify_passed = verify.Passed, peak_lr = peakLr,
            warmup_steps = schedule.WarmupSteps, batch = o.Batch, preset = preset.Name, checkpoint = o.Weights.Checkpoint,
        });
        return result;
    }

    /// <summary>A new linear head: weight trunc-normal (std 0.02, cut at ±2 std), bias 0 (timm's init).</summary>
    public static Linear NewHead(int features, int classes)
    {
        var head = nn.Linear(features, classes);
        using (no_grad())
        {
            nn.init.trunc_normal_(head.weight!, std: 0.02, a: -0.04, b: 0.04);
            nn.init.zeros_(head.bias!);
        }
        return head;
    }

    private static FineTuneSchedule Plan(FineTuneOptions o, double peakLr, long total, int stepsPerEpoch) =>
        new(peakLr, Math.Min(total, o.WarmupSteps ?? FineTuneSchedule.DefaultWarmupSteps(total, stepsPerEpoch)), total);

    /// <summary>
    /// The loader of this rank's Mixup/CutMix partners (<see cref="FineTuneViews.PartnerRows"/>: the rows of the rank whose
    /// slice mirrors its own), which it reads beside its own rows; null when it needs none, or they are its own.
    /// </summary>
    private static PrefetchLoader? PartnerLoader(FineTuneViews views, BatchSlice own, ICommunicator ranks, IImageDataset train, FineTuneOptions o)
    {
        if (views.PartnerRows is not BatchSlice rows || rows == own) return null;
        var share = new RankShare(ranks.Size - 1 - ranks.Rank, ranks.Size);
        if (share.Of(o.Batch) != rows)
            throw new InvalidOperationException($"rank {ranks.Rank}: the partner rank's rows {share.Of(o.Batch)} are not the mirrored rows {rows}");
        return new PrefetchLoader(train, o.Batch, o.Seed, shuffle: true, dropLast: true, share: share);
    }

    /// <summary>The epoch's batches from <paramref name="own"/>, each with the same step's from <paramref name="partners"/> when there is one.</summary>
    private static IEnumerable<(ImageBatch Own, ImageBatch? Partners)> Batches(PrefetchLoader own, PrefetchLoader? partners, int epoch, int startStep) =>
        partners is null
            ? own.Epoch(epoch, startStep).Select(b => (b, (ImageBatch?)null))
            : own.Epoch(epoch, startStep).Zip(partners.Epoch(epoch, startStep), (a, b) => (a, (ImageBatch?)b));

    private static void Validate(FineTuneOptions o)
    {
        if (o.Batch < 1) throw new ArgumentException($"--batch must be positive, found {o.Batch}");
        if (o.Epochs is <= 0 || o.MaxSteps is <= 0 || o.Minutes is <= 0)
            throw new ArgumentException("--epochs, --max-steps and --minutes must be positive");
        if (new[] { o.Epochs is not null, o.MaxSteps is not null, o.Minutes is not null }.Count(b => b) > 1)
            throw new ArgumentException("give only one of --epochs, --max-steps and --minutes");
        if (!(o.DropPath is >= 0 and < 1)) throw new ArgumentException($"--drop-path must be in [0, 1), found {o.DropPath}");
        if (o.Lr is <= 0 || !(o.BaseLr > 0)) throw new ArgumentException("the learning rate must be positive");
        if (o.LogEvery < 1 || o.EvalBatch < 1 || o.VerifyBatch < 1) throw new ArgumentException("--log-every, the eval and verify batches must be positive");
        if (Path.GetExtension(o.OnnxPath) is var ext && !ext.Equals(".onnx", StringComparison.OrdinalIgnoreCase))
            throw new ArgumentException($"{o.OnnxPath}: --out is the ONNX classifier to write and should end in .onnx");
    }
}
