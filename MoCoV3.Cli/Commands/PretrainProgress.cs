using System.Runtime.InteropServices;
using MoCoV3.Evaluation;
using MoCoV3.Training;
using Spectre.Console;

namespace MoCoV3.Cli.Commands;

/// <summary>
/// How a command shows a pretraining run: a progress bar with loss and img/s on a terminal, plain lines otherwise;
/// SIGINT/SIGTERM cancel the run so it finishes its step and writes a checkpoint.
/// </summary>
internal static class PretrainProgress
{
    /// <summary>Runs <paramref name="work"/> with <paramref name="trainer"/>'s events shown and the signals wired to a cancellation.</summary>
    public static T Run<T>(Pretrainer trainer, Func<CancellationToken, T> work)
    {
        using var cancel = new CancellationTokenSource();
        void Stop(string signal)
        {
            if (!cancel.IsCancellationRequested) Console.Error.WriteLine($"{signal}: finishing this step and writing a checkpoint…");
            cancel.Cancel();
        }
        using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, c => { c.Cancel = true; Stop("SIGINT"); });
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => { c.Cancel = true; Stop("SIGTERM"); });

        if (AnsiConsole.Profile.Capabilities.Interactive && !Console.IsOutputRedirected)
        {
            trainer.Info += message => AnsiConsole.MarkupLineInterpolated($"[grey]{message}[/]");
            trainer.KnnEvaluated += e => AnsiConsole.MarkupLineInterpolated($"[green]{KnnLine(e)}[/]");
            trainer.Warning += message => AnsiConsole.MarkupLineInterpolated($"[yellow]warning: {message}[/]");
            T result = default!;
            bool done = false;
            AnsiConsole.Progress()
                .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn())
                .Start(ctx =>
                {
                    var task = ctx.AddTask("pretrain", maxValue: 1);
                    trainer.Logged += (row, plan) =>
                    {
                        if (done) return;
                        task.MaxValue = plan.TotalSteps;
                        task.Value = row.Step;
                        task.Description = $"step {row.Step}/{plan.TotalSteps} loss {row.Loss:F4} {row.ImgPerS:F0} img/s";
                    };
                    result = work(cancel.Token);
                    done = true;
                });
            return result;
        }
        trainer.Info += Console.WriteLine;
        trainer.KnnEvaluated += e => Console.WriteLine(KnnLine(e));
        trainer.Warning += message => Console.Error.WriteLine($"warning: {message}");
        trainer.Logged += (row, plan) => Console.WriteLine(
            $"step {row.Step}/{plan.TotalSteps} epoch {row.Epoch:F2} loss {row.Loss:F4} lr {row.Lr:G3} m {row.Momentum:F5} " +
            $"grad_norm {row.GradNorm:F3} (first {row.GradNormFirst:F3}, last {row.GradNormLast:F3}) {row.ImgPerS:F1} img/s elapsed {row.ElapsedS:F0}s");
        return work(cancel.Token);
    }

    private static string KnnLine(KnnEvaluation e) => FormattableString.Invariant(
        $"knn step {e.Step} epoch {e.Epoch:F2}: top1={e.Result.Top1:F4} top5={e.Result.Top5:F4} (k {e.Result.K}, {e.Result.Train} train / {e.Result.Test} test images, {e.Seconds:F1}s)");
}
