using Spectre.Console;

namespace MoCoV3.Cli.Commands;

/// <summary>
/// Progress of a long command, the way <c>pretrain</c> shows it: a progress bar (one task per stage) on an interactive
/// terminal, plain lines otherwise (at most one per stage every ten seconds, plus the stage's last).
/// </summary>
internal static class CliProgress
{
    /// <summary>What a command reports: a stage, and how much of it is done.</summary>
    public readonly record struct Update(string Stage, long Done, long Total);

    /// <param name="work">The command's work, reporting to the progress it is given.</param>
    /// <param name="plainLines">Whether to print progress lines when the output is not a terminal (false: the command prints its own).</param>
    public static T Run<T>(Func<IProgress<Update>, T> work, bool plainLines = true)
    {
        if (AnsiConsole.Profile.Capabilities.Interactive && !Console.IsOutputRedirected)
        {
            T result = default!;
            AnsiConsole.Progress()
                .AutoClear(false)
                .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn())
                .Start(ctx =>
                {
                    var tasks = new Dictionary<string, ProgressTask>(StringComparer.Ordinal);
                    result = work(new Synchronous(update =>
                    {
                        lock (tasks)
                        {
                            if (!tasks.TryGetValue(update.Stage, out var task))
                                tasks[update.Stage] = task = ctx.AddTask(Markup.Escape(update.Stage), maxValue: Math.Max(1, update.Total));
                            task.MaxValue = Math.Max(1, update.Total);
                            task.Value = update.Done;
                        }
                    }));
                    foreach (var task in tasks.Values) task.Value = task.MaxValue;
                });
            return result;
        }
        if (!plainLines) return work(new Synchronous(_ => { }));
        var last = new Dictionary<string, DateTime>(StringComparer.Ordinal);
        return work(new Synchronous(update =>
        {
            lock (last)
            {
                var now = DateTime.UtcNow;
                bool finished = update.Done >= update.Total;
                if (!finished && last.TryGetValue(update.Stage, out var at) && now - at < TimeSpan.FromSeconds(10)) return;
                last[update.Stage] = now;
                Console.WriteLine($"{update.Stage}: {update.Done}/{update.Total}");
            }
        }));
    }

    /// <summary>Reports on the caller's thread (<see cref="Progress{T}"/> would post to the thread pool, out of order).</summary>
    private sealed class Synchronous(Action<Update> report) : IProgress<Update>
    {
        public void Report(Update value) => report(value);
    }
}
