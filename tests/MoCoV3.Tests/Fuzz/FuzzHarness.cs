using System.Diagnostics;

namespace MoCoV3.Tests.Fuzz;

/// <summary>
/// Runs a reader over mutated copies of valid files and sorts every case into: success; an expected typed error
/// (one of the given exception types, whose message names the file); or a failure (any other exception, a check of
/// the loaded result that fails, a message that does not name the file, a managed allocation out of proportion to the
/// file's size, or no answer within the timeout). Each case
/// draws its mutations from <c>Random(seed * 1000003 + case)</c>, so <c>MOCOV3_FUZZ_SEED</c> and
/// <c>MOCOV3_FUZZ_CASE</c> replay one case.
/// </summary>
internal static class FuzzHarness
{
    /// <summary>
    /// A case may allocate (managed memory, on its thread) this much per byte of its file, plus
    /// <see cref="AllocationSlack"/>: gzip expands at most about 1032:1, so more means a size field drove an allocation.
    /// </summary>
    private const long MaxBytesPerFileByte = 2048;

    private const long AllocationSlack = 64L << 20;

    /// <param name="format">The format's name, for the summary line.</param>
    /// <param name="folder">Where the case files go (beside the files they refer to, for manifests).</param>
    /// <param name="seeds">Valid files; case i mutates <c>seeds[i % seeds.Count]</c>.</param>
    /// <param name="read">Reads a case file, and checks what it loaded (throwing on a wrong load).</param>
    /// <param name="defaultCases">Cases when <c>MOCOV3_FUZZ_CASES</c> is not set.</param>
    /// <param name="typedErrors">The exception types that count as a clean refusal.</param>
    public static FuzzReport Run(string format, string folder, IReadOnlyList<FuzzSeed> seeds, Action<string> read,
        int defaultCases, params Type[] typedErrors)
    {
        var settings = FuzzSettings.FromEnvironment(defaultCases);
        var report = new FuzzReport(format, settings.Seed);
        var clock = Stopwatch.StartNew();
        int first = settings.OnlyCase ?? 0;
        int last = settings.OnlyCase ?? settings.Cases - 1;
        for (int index = first; index <= last; index++)
        {
            var random = new Random(unchecked(settings.Seed * 1000003 + index));
            FuzzSeed seed = seeds[index % seeds.Count];
            var log = new List<string>();
            byte[] bytes = seed.Mutate is null ? FuzzMutator.Mutate(seed.Bytes, random, log) : seed.Mutate(seed.Bytes, random, log);
            string path = Path.Combine(folder, $"case{index}-{seed.FileName}");
            File.WriteAllBytes(path, bytes);
            string replay = $"MOCOV3_FUZZ_SEED={settings.Seed} MOCOV3_FUZZ_CASE={index} ({seed.FileName}: {string.Join("; ", log)})";
            RunCase(report, path, read, settings.Timeout, replay, typedErrors);
            TryDelete(path);
        }
        report.Elapsed = clock.Elapsed;
        string summary = report.Summary();
        Console.WriteLine(summary);
        if (settings.ReportFile is not null)
            File.AppendAllText(settings.ReportFile, summary + Environment.NewLine);
        return report;
    }

    private static void RunCase(FuzzReport report, string path, Action<string> read, TimeSpan timeout, string replay,
        Type[] typedErrors)
    {
        // A thread of its own: a hang is reported (the thread is abandoned) instead of stopping the run.
        Exception? error = null;
        long allocated = 0;
        var thread = new Thread(() =>
        {
            long before = GC.GetAllocatedBytesForCurrentThread();
            try
            {
                read(path);
            }
            catch (Exception e)
            {
                error = e;
            }
            allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        }, maxStackSize: 16 << 20)
        {
            IsBackground = true,
            Name = "fuzz case",
        };
        thread.Start();
        if (!thread.Join(timeout))
        {
            report.Fail(replay, $"no answer within {timeout.TotalSeconds:0} s (a hang)");
            return;
        }
        long fileLength = new FileInfo(path).Length;
        long allowed = MaxBytesPerFileByte * fileLength + AllocationSlack;
        if (allocated > allowed)
        {
            report.Fail(replay, $"allocated {allocated} managed bytes for a {fileLength}-byte file (more than {allowed}): "
                + $"a size in the file drove an allocation; {(error is null ? "loaded" : error.GetType().Name + ": " + error.Message)}");
            return;
        }
        if (error is null)
        {
            report.Succeeded();
            return;
        }
        if (!typedErrors.Any(t => t.IsInstanceOfType(error)))
        {
            report.Fail(replay, $"{error.GetType().Name}: {error.Message}\n{TopFrames(error)}");
            return;
        }
        if (!error.Message.Contains(path, StringComparison.Ordinal))
        {
            report.Fail(replay, $"{error.GetType().Name} whose message does not name the file: {error.Message}");
            return;
        }
        report.Refused(error.GetType().Name, error.Message.Replace(path, "FILE", StringComparison.Ordinal));
    }

    private static string TopFrames(Exception error) =>
        string.Join("\n", (error.StackTrace ?? "").Split('\n').Take(4).Select(line => "    " + line.Trim()));

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (IOException)
        {
            // A case still running past its timeout may hold it; the temporary folder goes anyway.
        }
        catch (UnauthorizedAccessException)
        {
        }
    }
}
