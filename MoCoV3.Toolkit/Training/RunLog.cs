using System.Diagnostics;
using TorchSharp.Modules;

namespace MoCoV3.Training;

/// <summary>
/// Where a run's logged steps go: <c>metrics.csv</c>, TensorBoard (<c>tb/</c>), and the throughput and
/// data-wait figures measured between two logged steps. Both logs are cut back to the step a run resumes (or rolls back) to.
/// </summary>
internal sealed class RunLog : IDisposable
{
    private readonly MetricsLog metrics;
    private readonly string? tensorboardDir;
    private SummaryWriter? tensorboard;
    private readonly Stopwatch sinceLog = Stopwatch.StartNew();
    private long images;
    private double dataWaitSeconds;
    private double excludedSeconds;

    public RunLog(string outputDir, long resumeStep, bool tensorboard)
    {
        metrics = new MetricsLog(Path.Combine(outputDir, "metrics.csv"), resumeStep);
        if (!tensorboard) return;
        tensorboardDir = Path.Combine(outputDir, "tb");
        TensorBoardRewind.RewindTo(tensorboardDir, resumeStep);
        this.tensorboard = TorchSharp.torch.utils.tensorboard.SummaryWriter(tensorboardDir);
    }

    /// <summary>Counts a finished step's images and the time it waited for its batch.</summary>
    public void Count(int batch, double waitSeconds)
    {
        images += batch;
        dataWaitSeconds += waitSeconds;
    }

    /// <summary>Leaves time spent on something else than training (a kNN evaluation) out of the throughput.</summary>
    public void Exclude(double seconds) => excludedSeconds += seconds;

    /// <summary>The rows kept from earlier runs on resume or rollback (see <see cref="MetricsLog.Kept"/>).</summary>
    public IReadOnlyList<MetricsRow> Kept => metrics.Kept;

    /// <summary>Drops what was logged after <paramref name="step"/> (a rollback to its checkpoint).</summary>
    public void RewindTo(long step)
    {
        metrics.RewindTo(step);
        if (tensorboardDir is null) return;
        TensorBoardRewind.RewindTo(tensorboardDir, step);
        tensorboard = TorchSharp.torch.utils.tensorboard.SummaryWriter(tensorboardDir);
    }

    /// <summary>
    /// Writes <paramref name="row"/> with its throughput (images counted since the last row) filled in, and its
    /// <paramref name="warnings"/> as TensorBoard text; starts a new interval.
    /// </summary>
    public MetricsRow Write(MetricsRow row, IReadOnlyList<InstabilityWarning> warnings)
    {
        double interval = Math.Max(sinceLog.Elapsed.TotalSeconds - excludedSeconds, 1e-9);
        row = row with { ImgPerS = images / interval };
        metrics.Write(row);
        if (tensorboard is not null)
        {
            int s = (int)row.Step;
            tensorboard.add_scalar("train/loss", (float)row.Loss, s);
            tensorboard.add_scalar("train/lr", (float)row.Lr, s);
            tensorboard.add_scalar("train/momentum", (float)row.Momentum, s);
            tensorboard.add_scalar("train/grad_norm", (float)row.GradNorm, s);
            if (row.GradNormFirst is double first) tensorboard.add_scalar("train/grad_norm_first", (float)first, s);
            if (row.GradNormLast is double last) tensorboard.add_scalar("train/grad_norm_last", (float)last, s);
            tensorboard.add_scalar("train/img_per_s", (float)row.ImgPerS, s);
            tensorboard.add_scalar("train/data_wait_share", (float)(dataWaitSeconds / interval), s);
            if (row.KnnTop1 is double knn) tensorboard.add_scalar("eval/knn_top1", (float)knn, s);
            foreach (var w in warnings)
            {
                tensorboard.add_scalar($"instability/{w.Kind}", (float)(w.Value / w.Reference), s);
                tensorboard.add_text("instability", w.Message, s);
            }
        }
        sinceLog.Restart();
        images = 0;
        dataWaitSeconds = 0;
        excludedSeconds = 0;
        return row;
    }

    public void Dispose() => metrics.Dispose();
}
