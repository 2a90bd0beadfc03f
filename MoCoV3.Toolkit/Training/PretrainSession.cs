using MoCoV3.Checkpoints;
using System.Diagnostics;
using MoCoV3.Augment;
using MoCoV3.Data;
using MoCoV3.Distributed;
using MoCoV3.Evaluation;
using MoCoV3.Method;
using MoCoV3.Models;
using MoCoV3.Optim;
using TorchSharp;
using static TorchSharp.torch;

namespace MoCoV3.Training;

/// <summary>
/// The state of a pretraining run while it trains: the model and optimiser, the step, the rollback learning-rate scale,
/// the logs and checkpoints. <see cref="Pretrainer.Run"/> makes one per run and drives its loop; each piece of the loop
/// (<see cref="Train"/>, <see cref="AfterStep"/>, <see cref="RollBack"/>) is a method here.
/// Data-parallel (<see cref="Pretrainer.Communicator"/> of several ranks): every rank takes its slice of each global batch
/// (<see cref="BatchSlice"/>), with the augmentation one process would draw for those images; weights start as rank 0's,
/// every BatchNorm is synchronised, keys gathered and gradients averaged (<see cref="MoCo.DataParallel"/>,
/// <see cref="GradientAverager"/>); the NaN check reads the loss averaged over ranks, so every rank decides the same; rank 0
/// alone writes config.json, metrics, TensorBoard and checkpoints and raises the events.
/// </summary>
internal sealed class PretrainSession : IDisposable
{
    private readonly Pretrainer events;
    private readonly IImageDataset dataset;
    private readonly KnnMonitor? knn;
    private readonly Device device;
    private readonly MoCo model;
    private readonly ITrainingOptimizer optimizer;
    private readonly RunLog? log;                 // rank 0's
    private readonly ICommunicator ranks;
    private readonly BatchSlice slice;            // this rank's rows of each global batch
    private readonly GradientAverager? averager;  // data-parallel runs
    private readonly MoCoAugmentation augmentation;
    private readonly PrefetchLoader loader;
    private readonly RunCheckpoints checkpoints;
    private readonly StepPolicy policy;
    private readonly WatchedLayers watched;
    private readonly GradientClipping? clip;
    private readonly TimeBudget? budget;
    private readonly Stopwatch clock = new();
    private PretrainRun run;
    private InstabilityMonitor instability;
    private long step;
    private double priorElapsed;
    private double lrScale = 1; // halved by each --on-nan rollback
    private double knnSeconds;  // left out of the step timing of --minutes
    private string? soloWork;   // what rank 0 did alone after the last step, which the others waited for

    public PretrainSession(PretrainRun run, IImageDataset dataset, KnnMonitor? knn, Device device, Pretrainer events)
    {
        (this.run, this.dataset, this.device, this.events) = (run, dataset, device, events);
        var (preset, plan, options) = (run.Preset, run.Plan, run.Options);
        ranks = events.Communicator;
        slice = BatchSlice.Of(plan.Batch, ranks.Rank, ranks.Size);
        if (ranks.Size > 1) CheckDataParallel(run, device, ranks);
        this.knn = IsRoot ? knn : null; // kNN monitoring on rank 0 alone
        budget = run.LengthFixed ? null : new TimeBudget(options.Minutes!.Value);

        manual_seed(plan.Seed);
        model = new MoCo(preset, BackboneFactory.Create);
        model.to(device);
        optimizer = TrainStep.CreateOptimizer(preset, model, plan.PeakLr);
        if (run.ResumeFrom is not null)
        {
            var header = CheckpointFile.Load(run.ResumeFrom, model, optimizer);
            (step, priorElapsed, lrScale) = (header.Step, header.ElapsedSeconds, header.LrScale);
            events.OnInfo($"resumed from {run.ResumeFrom} at step {step} ({step / (double)plan.StepsPerEpoch:F2} epochs)");
        }
        else if (options.Init is not null)
        {
            InitialWeights.Load(options.Init, model, events.OnInfo);
        }
        if (ranks.Size > 1)
        {
            ranks.SetActivity("the start (rank 0's weights broadcast to every rank)");
            ModelBroadcast.FromRoot(model, ranks); // every rank starts from rank 0's weights (and its --init / --resume)
            model.DataParallel(ranks, events.SyncBatchNorm);
            averager = new GradientAverager(optimizer.Parameters, ranks);
        }

        if (IsRoot) run.WriteConfig(device);
        log = IsRoot ? new RunLog(options.OutputDir, step, options.TensorBoard) : null;
        augmentation = MoCoAugmentation.FromPreset(preset);
        // The seed is the run's (from the checkpoint when resuming), so a resumed run sees the same batches and views.
        // Image files: both views cut from the original image on the loader's threads (the device adds the colour part).
        var views = options.Augment != AugmentationRecipe.None && dataset is IViewDataset { CanCutViews: true }
            ? new ViewCropping(new RandomResizedCrop(preset.Input.ImageSize, preset.Recipe.CropMin), plan.Seed) : null;
        // Data-parallel: every rank reads and decodes its own rows of each global batch alone (the same rows as `slice`).
        loader = new PrefetchLoader(dataset, plan.Batch, plan.Seed, shuffle: true, dropLast: true, views: views,
            share: ranks.Size > 1 ? new RankShare(ranks.Rank, ranks.Size) : null);
        checkpoints = new RunCheckpoints(run.CheckpointPath, model, optimizer, run.ResumeFrom, step, writes: IsRoot);
        policy = StepPolicy.For(options, knn is not null, plan.StepsPerEpoch);
        watched = WatchedLayers.Of(model.BaseEncoder.Backbone);
        instability = NewMonitor();
        clip = options.ClipGrad is double maxNorm ? new GradientClipping(maxNorm) : null;

        events.OnInfo(run.Describe(dataset, device));
        if (ranks.Size > 1)
        {
            events.OnInfo($"data-parallel over {ranks.Size} ranks ({ranks.Description}): {slice.Count} images per rank of each global batch of {plan.Batch}");
            var processes = RankProcesses.Gather(ranks);
            events.OnInfo($"ranks: {string.Join(", ", processes)}");
        }
        if (knn is not null) events.OnInfo($"{knn.Describe()}, every {options.KnnEvery} steps and at the end");
        if (lrScale != 1) events.OnInfo($"learning rate scaled by {lrScale} (earlier --on-nan rollbacks)");
    }

    /// <summary>Trains to the end of the plan, or until <paramref name="cancel"/> asks to stop (then a checkpoint is written).</summary>
    public PretrainResult Train(CancellationToken cancel)
    {
        model.train();
        clock.Start();
        if (run.Options.OnNan == OnNanPolicy.Rollback && checkpoints.Last is null)
        {
            Save(); // step 0, so that a NaN in the first steps has something to roll back to
            events.OnInfo($"--on-nan rollback: wrote the initial checkpoint {checkpoints.Path}");
        }
        bool stopped = false;
        var (startStep, startCommunication) = (step, ranks.TimeInCollectives);
        while (step < run.Plan.TotalSteps && !stopped)
        {
            int stepsPerEpoch = run.Plan.StepsPerEpoch;
            foreach (var data in loader.Epoch((int)(step / stepsPerEpoch), (int)(step % stepsPerEpoch)))
            {
                using var batchData = data;
                using var scope = NewDisposeScope();
                if (ranks.Size > 1) ranks.SetActivity(Activity());
                var (loss, lr, m) = TrainOn(data);
                var actions = policy.After(step, run.Plan.TotalSteps);
                soloWork = actions.Knn ? $"rank 0's kNN evaluation after step {step}" : actions.Save ? $"rank 0's checkpoint of step {step}" : null;
                bool stop = cancel.IsCancellationRequested;
                if (actions.Log || actions.Save || stop || device.type == DeviceType.CPU)
                {
                    if (!AfterStep(GlobalLoss(loss), lr, m, actions)) break; // rolled back: the epoch restarts at the checkpoint's step
                }
                stop = StopRequested(cancel); // a handler of Logged may have asked to stop at this step
                if (actions.Save || stop) Save();
                // Stopped early, the other ranks exit non-zero (interrupted), and a launcher may then end rank 0: not before its checkpoint is written.
                if (stop && ranks.Size > 1) ranks.Barrier();
                if (stop) stopped = true;
                if (stop || actions.Last) break;
            }
        }
        if (ranks.Size > 1 && startCommunication is TimeSpan before && step > startStep)
            ReportCommunication(ranks.TimeInCollectives!.Value - before, step - startStep);
        return new PretrainResult(checkpoints.Path, step, run.Plan, Elapsed, stopped);
    }

    /// <summary>
    /// Rank 0 logs each rank's time in collectives over this run's steps (moving data, and waiting for ranks that come
    /// later: the whole cost of communication that is not overlapped with work), as seconds per step and a share of the run.
    /// </summary>
    private void ReportCommunication(TimeSpan inCollectives, long steps)
    {
        double seconds = clock.Elapsed.TotalSeconds;
        double[] all = new double[2 * ranks.Size];
        ranks.AllGather<double>([inCollectives.TotalSeconds, seconds], all);
        var perRank = Enumerable.Range(0, ranks.Size).Select(r =>
            FormattableString.Invariant($"rank {r} {all[2 * r] / steps:F3} s/step ({100 * all[2 * r] / Math.Max(all[2 * r + 1], 1e-9):F1}%)"));
        events.OnInfo(FormattableString.Invariant($"time in collectives (communication and waiting for the other ranks) over {steps} steps of {seconds / steps:F3} s: ") +
                      string.Join(", ", perRank));
    }

    /// <summary>One optimiser step on a batch: schedules, two views, <see cref="TrainStep"/>; fixes the <c>--minutes</c> length when timed.</summary>
    private (Tensor Loss, double Lr, double Momentum) TrainOn(ImageBatch data)
    {
        var (preset, plan) = (run.Preset, run.Plan);
        double t = (double)step / plan.StepsPerEpoch;
        double lr = lrScale * Schedules.LearningRate(t, plan.PeakLr, plan.WarmupEpochs, plan.Epochs);
        double m = Schedules.Momentum(t, plan.Epochs, preset.Recipe.Momentum0);
        if (data.Rows != slice) // the loader reads this rank's rows of the global batch alone
            throw new InvalidOperationException($"rank {ranks.Rank}: step {step} got rows {data.Rows} of the global batch, expected {slice}");
        var pixels = data.Pixels.to(device);
        var view2 = data.View2?.to(device);
        (int, int)? rows = slice.IsWhole ? null : (slice.Offset, slice.GlobalCount);
        var (x1, x2) = run.Options.Augment == AugmentationRecipe.None
            ? (augmentation.Plain(pixels), augmentation.Plain(pixels))
            : view2 is Tensor cropped2 ? augmentation.TwoCroppedViews(pixels, cropped2, plan.Seed, step, rows)
            : augmentation.TwoViews(pixels, plan.Seed, step, rows);
        var loss = TrainStep.Run(model, optimizer, x1, x2, lr, m, clip, run.Amp, averager);
        step++;
        log?.Count(plan.Batch, data.WaitSeconds);
        if (budget?.OnStep(step, clock.Elapsed.TotalSeconds - knnSeconds, clock.Elapsed.TotalSeconds, ranks) is long total)
        {
            run = run.WithLength(total);
            events.OnInfo($"timed {budget.TimedSteps} steps: the {budget.Minutes} minute budget fits {run.Plan.TotalSteps} steps " +
                          $"({run.Plan.Epochs:F2} epochs, warmup {run.Plan.WarmupEpochs:F2})");
        }
        return (loss, lr, m);
    }

    /// <summary>
    /// Checks the step's loss and gradient norm (a NaN/inf stops the run or rolls it back; false when rolled back), runs the
    /// kNN evaluation and writes the metrics row, as <paramref name="actions"/> asks.
    /// </summary>
    private bool AfterStep(double loss, double lr, double momentum, StepActions actions)
    {
        // Gradients before clipping; checked before a checkpoint too, so one is never written after an inf gradient.
        double? gradNorm = actions.Log || actions.Save ? clip?.LastNorm ?? WatchedLayers.GradNorm(optimizer.Parameters) : null;
        (string what, double value)? nonFinite = !double.IsFinite(loss) ? ("loss", loss)
            : gradNorm is double g && !double.IsFinite(g) ? ("gradient norm", g) : null;
        if (nonFinite is var (what, value))
        {
            if (run.Options.OnNan != OnNanPolicy.Rollback) throw new NonFiniteLossException(step, value, checkpoints.Last, what);
            RollBack(what, value);
            return false;
        }
        if (!IsRoot) return true; // metrics, kNN and events are rank 0's
        double epoch = (double)step / run.Plan.StepsPerEpoch;
        double? knnTop1 = null;
        if (actions.Knn)
        {
            var knnClock = Stopwatch.StartNew();
            var result = knn!.Evaluate(model.BaseEncoder.Backbone, augmentation.Plain, device); // eval mode, no gradients
            var evaluation = new KnnEvaluation(step, epoch, result, knnClock.Elapsed.TotalSeconds);
            knnSeconds += evaluation.Seconds;
            log!.Exclude(evaluation.Seconds);
            knnTop1 = result.Top1;
            events.OnKnnEvaluated(evaluation);
        }
        if (actions.Log)
        {
            double unclip = clip?.LastScale ?? 1; // the layer norms as they were before clipping
            var row = new MetricsRow
            {
                Step = step, Epoch = epoch, Loss = loss, Lr = lr, Momentum = momentum, GradNorm = gradNorm!.Value,
                ElapsedS = Elapsed, KnnTop1 = knnTop1,
                GradNormFirst = WatchedLayers.GradNorm(watched.First) / unclip,
                GradNormLast = WatchedLayers.GradNorm(watched.Last) / unclip,
            };
            var warnings = instability.Observe(row);
            row = log!.Write(row with { Warnings = string.Join(';', warnings.Select(w => w.Kind)) }, warnings);
            foreach (var w in warnings) events.OnWarning(w.Message);
            events.OnLogged(row, run.Plan);
        }
        return true;
    }

    /// <summary>
    /// <c>--on-nan rollback</c>: reloads the last good checkpoint and halves the learning rate; the metrics logged after that
    /// checkpoint are dropped, as on a resume, and the halved rate is saved at once so a resume keeps it.
    /// </summary>
    private void RollBack(string what, double value)
    {
        long failed = step;
        step = checkpoints.RollBack(step, lrScale, what, value).Step;
        lrScale /= 2;
        if (ranks.Size > 1) ranks.Barrier(); // every rank has read the checkpoint before rank 0 rewrites it
        log?.RewindTo(step);
        instability = NewMonitor();
        Save();
        events.OnWarning($"{what} is {value} at step {failed}: rolled back to the checkpoint of step {step} " +
                         $"and halved the learning rate (now {lrScale} × the schedule's)");
    }

    private void Save() => checkpoints.Save(new CheckpointHeader
    {
        Preset = run.Preset, Plan = run.Plan, Step = step, ElapsedSeconds = Elapsed, LrScale = lrScale,
    });

    private double Elapsed => priorElapsed + clock.Elapsed.TotalSeconds;

    /// <summary>The step being trained and the checkpoint a resume continues from, for the error of a collective that times out.</summary>
    private string Activity() =>
        $"step {step + 1}/{run.Plan.TotalSteps}{(soloWork is null ? "" : $", after {soloWork}")}; " +
        (checkpoints is { Last: string last, LastStep: long saved } ? $"{last} holds step {saved}, which --resume auto continues from" : "no checkpoint written yet");

    private bool IsRoot => ranks.Rank == 0;

    /// <summary>
    /// Whether to stop after this step: in a data-parallel run, whether any rank was asked to (a signal reaches the ranks
    /// one by one, a Logged handler only rank 0), so that every rank stops at the same step and rank 0 writes its checkpoint.
    /// </summary>
    private bool StopRequested(CancellationToken cancel)
    {
        if (ranks.Size == 1) return cancel.IsCancellationRequested;
        int[] requests = [cancel.IsCancellationRequested ? 1 : 0];
        ranks.AllReduceSum<int>(requests);
        return requests[0] > 0;
    }

    /// <summary>The step's loss; in a data-parallel run its mean over ranks (the one-process loss of the global batch), the same on every rank.</summary>
    private double GlobalLoss(Tensor loss)
    {
        double value = loss.item<float>();
        if (ranks.Size == 1) return value;
        double[] sum = [value];
        ranks.AllReduceSum<double>(sum);
        return sum[0] / ranks.Size;
    }

    /// <summary>A device the communicator cannot reduce tensors on, named before anything is built.</summary>
    private static void CheckDataParallel(PretrainRun run, Device device, ICommunicator ranks)
    {
        if (!ranks.Takes(device))
            throw new NotSupportedException($"data-parallel pretraining over {ranks.Description} takes CPU tensors; --device {device} needs NCCL (DistributedContext.Open with that device)");
    }

    private InstabilityMonitor NewMonitor()
    {
        var monitor = new InstabilityMonitor(run.Options.SpikeFactor, watched.FirstName, watched.LastName);
        monitor.Seed(log?.Kept ?? []); // a resumed run flags exactly what the uninterrupted run would
        return monitor;
    }

    public void Dispose()
    {
        loader.Dispose();
        log?.Dispose();
        averager?.Dispose();
        optimizer.Dispose();
        model.Dispose();
    }
}
