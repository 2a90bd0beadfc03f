using System.CommandLine;
using System.Globalization;
using MoCoV3.Data;
using MoCoV3.Eval.Probe;

namespace MoCoV3.Cli.Commands;

/// <summary><c>mocov3 probe</c>: the ML.NET linear probe of an exported encoder (see <see cref="LinearProbe"/>).</summary>
public static class ProbeCommand
{
    public static Command Create()
    {
        var encoder = new Option<string>("--encoder") { Description = "Exported encoder (mocov3 export): input 'input' [N,C,H,W], output 'embedding'", Required = true };
        var data = new Option<string?>("--data") { Description = "Fashion-MNIST folder, image folder or CSV manifest (default: Fashion-MNIST in its Debian folder)" };
        var dataset = new Option<string>("--dataset") { Description = "auto | fashion-mnist | imagefolder | csv", DefaultValueFactory = _ => DatasetFactory.AutoKind };
        dataset.AcceptOnlyFromAmong([.. DatasetFactory.Kinds]);
        var output = new Option<string>("--out") { Description = "Folder for probe.zip, report.csv and confusion.png", DefaultValueFactory = _ => "probe" };
        var limit = new Option<int?>("--limit") { Description = "Use only the first N images of each split" };
        var baselines = new Option<bool>("--baselines") { Description = "Also probe raw pixels and the same architecture at random init (into OUT/baselines/)" };
        var seed = new Option<int>("--seed") { Description = "Seed of the held-out split, ML.NET and the random-init weights", DefaultValueFactory = _ => 0 };
        var defaults = new ProbeOptions { Encoder = "-", OutputDir = "-" };
        var l2 = new Option<float[]>("--l2")
        {
            Description = "L2 weights tried on the held-out split (ML.NET scale: ½·L2·‖w‖² added to the loss summed over rows)",
            DefaultValueFactory = _ => [.. defaults.L2Candidates],
            AllowMultipleArgumentsPerToken = true,
        };
        var maxIterations = new Option<int>("--max-iterations") { Description = "L-BFGS iterations of the final fit (at most)", DefaultValueFactory = _ => defaults.MaxIterations };
        var sweepRows = new Option<int>("--sweep-rows") { Description = "Training rows each L2 sweep fit uses (L2 scaled to them); 0 for all", DefaultValueFactory = _ => defaults.SweepRows ?? 0 };
        var sweepIterations = new Option<int>("--sweep-iterations") { Description = "L-BFGS iterations per sweep fit (at most)", DefaultValueFactory = _ => defaults.SweepIterations };

        var command = new Command("probe", "Linear probe in ML.NET: exported encoder → L-BFGS logistic regression; writes probe.zip, report.csv, confusion.png")
        {
            encoder, data, dataset, output, limit, baselines, seed, l2, maxIterations, sweepRows, sweepIterations,
        };
        command.SetAction(r => CliErrors.Run(() => Run(new ProbeOptions
        {
            Encoder = r.GetValue(encoder)!,
            Data = new() { Path = r.GetValue(data), Kind = r.GetValue(dataset)!, Limit = r.GetValue(limit) },
            OutputDir = r.GetValue(output)!,
            Seed = r.GetValue(seed),
            L2Candidates = r.GetValue(l2)!,
            MaxIterations = r.GetValue(maxIterations),
            SweepRows = r.GetValue(sweepRows) is > 0 and var rows ? rows : null,
            SweepIterations = r.GetValue(sweepIterations),
        }, r.GetValue(baselines))));
        return command;
    }

    private static int Run(ProbeOptions options, bool baselines)
    {
        var results = CliProgress.Run(progress =>
        {
            var probeProgress = new ProbeProgressAdapter(progress);
            return baselines ? LinearProbe.RunWithBaselines(options, Console.WriteLine, probeProgress)
                             : (IReadOnlyList<ProbeResult>)[LinearProbe.Run(options, Console.WriteLine, probeProgress)];
        });
        var probe = results[0];
        Console.WriteLine(FormattableString.Invariant($"top1={probe.Top1:F4} top5={probe.Top5:F4}"));
        Console.WriteLine($"wrote {probe.ModelPath}, {probe.ReportPath}, {probe.ConfusionMatrixPath}");
        if (!baselines) return 0;

        Console.WriteLine();
        Console.WriteLine($"{"features",-12} {"dim",6} {"top1",7} {"top5",7} {"best_l2",8} {"featurize_s",12} {"fit_s",7}");
        foreach (var r in results)
        {
            double featurize = r.Seconds(ProbeStages.FeaturizeTrain) + r.Seconds(ProbeStages.FeaturizeTest);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{r.Name,-12} {r.FeatureDim,6} {r.Top1,7:F4} {r.Top5,7:F4} {r.BestL2,8:G3} {featurize,12:F1} {r.Seconds(ProbeStages.Fit),7:F1}"));
        }
        return 0;
    }

    /// <summary>A probe's stages as progress lines: "encoder featurize 30000/70000", "encoder fit 2/5".</summary>
    internal sealed class ProbeProgressAdapter(IProgress<CliProgress.Update> progress) : IProgress<ProbeProgress>
    {
        public void Report(ProbeProgress value)
        {
            string stage = value.Stage is ProbeStages.FeaturizeTrain or ProbeStages.FeaturizeTest ? "featurize" : "sweep + fit";
            progress.Report(new CliProgress.Update($"{value.Name} {stage}", value.Done, value.Total));
        }
    }
}
