using MoCoV3.IO;
using System.Diagnostics;
using System.Globalization;
using CsvHelper;
using MoCoV3.Checkpoints;
using MoCoV3.Data;
using MoCoV3.Eval.Probe;
using MoCoV3.Export;
using MoCoV3.Models;
using MoCoV3.Training;
using static TorchSharp.torch;

namespace MoCoV3.Eval.Quickstart;

/// <summary>
/// The main job, end to end: MoCo v3 pretraining for a time budget, export of the query backbone to ONNX, a check of
/// the export against TorchSharp on real test images, and the ML.NET linear probe of the exported encoder next to the
/// two baselines (raw pixels and the same architecture at random init), all with the same trainer and data.
/// </summary>
public static class QuickstartRun
{
    public const string PretrainFolder = "pretrain";
    public const string EncoderFileName = "encoder.onnx";
    public const string ProbeFolder = "probe";
    public const string ReportFileName = "quickstart.csv";

    /// <summary>Images in the export check (from the test split).</summary>
    public const int VerifyImages = 32;

    /// <summary>
    /// Runs the job. <paramref name="trainer"/> is the pretrainer to use, so the caller can follow its progress
    /// (<see cref="Pretrainer.Logged"/>, <see cref="Pretrainer.Info"/>); <paramref name="log"/> gets one line per stage.
    /// Throws <see cref="OperationCanceledException"/> when <paramref name="cancel"/> stopped pretraining (its checkpoint is kept).
    /// </summary>
    public static QuickstartResult Run(QuickstartOptions options, Pretrainer trainer, Action<string>? log = null,
                                       CancellationToken cancel = default)
    {
        var clock = Stopwatch.StartNew();
        var pretrain = Pretrain(options, trainer, cancel);
        return Evaluate(options, pretrain, clock.Elapsed.TotalSeconds, log);
    }

    /// <summary>The first stage: MoCo v3 pretraining of the preset for the time budget (or step count) of <paramref name="options"/>.</summary>
    public static PretrainResult Pretrain(QuickstartOptions options, Pretrainer trainer, CancellationToken cancel = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(trainer);
        options.Validate();
        var preset = PresetCatalog.Get(options.Preset);
        Directory.CreateDirectory(options.OutputDir);
        var pretrain = trainer.Run(preset, new PretrainOptions
        {
            OutputDir = Path.Combine(options.OutputDir, PretrainFolder),
            Data = options.Data,
            Minutes = options.MaxSteps is null ? options.Minutes : null,
            MaxSteps = options.MaxSteps,
            Batch = options.Batch,
            Compute = new() { Threads = options.Threads },
            Seed = options.Seed,
        }, cancel);
        if (pretrain.Interrupted)
            throw new OperationCanceledException($"pretraining stopped at step {pretrain.Steps}; its checkpoint is {pretrain.Checkpoint}");
        return pretrain;
    }

    /// <summary>
    /// The other stages, on the checkpoint of <paramref name="pretrain"/>: export, verify, probe with baselines, report.
    /// <paramref name="pretrainSeconds"/> is the wall-clock time of the first stage, for the stage table.
    /// </summary>
    public static QuickstartResult Evaluate(QuickstartOptions options, PretrainResult pretrain, double pretrainSeconds,
                                            Action<string>? log = null, IProgress<ProbeProgress>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(pretrain);
        options.Validate();
        log ??= _ => { };
        var preset = PresetCatalog.Get(options.Preset);
        var stages = new List<StageTime> { new(QuickstartStages.Pretrain, pretrainSeconds) };
        var clock = Stopwatch.StartNew();
        log(Invariant($"pretrain: {pretrain.Steps} steps ({pretrain.Plan.Epochs:F2} epochs) in {pretrain.ElapsedSeconds:F0} s"));

        string encoderPath = Path.Combine(options.OutputDir, EncoderFileName);
        VerifyResult verify;
        using (var imported = CheckpointImporter.Load(pretrain.Checkpoint, CheckpointFormat.Toolkit, preset))
        {
            OnnxExporter.ExportToFile(imported.Backbone, imported.Preset, new ExportOptions(), encoderPath);
            using var pixels = TorchReference.FirstImages(
                options.Data.Open(preset.Input.ImageSize, preset.Input.Channels, train: false), VerifyImages);
            verify = OnnxVerifier.Verify(encoderPath, imported.Backbone, imported.Preset, pixels);
        }
        stages.Add(new(QuickstartStages.Export, clock.Elapsed.TotalSeconds));
        log(Invariant($"export: {encoderPath}, max_abs_diff={verify.MaxAbsDiff:G3} cosine_min={verify.CosineMin:F6} on {verify.Batch} test images"));
        if (!verify.Passed)
            throw new InvalidDataException(Invariant($"{encoderPath}: ONNX Runtime and TorchSharp differ by {verify.MaxAbsDiff:G3} (bound {verify.Fp32Bound:G3})"));

        clock.Restart();
        var probes = LinearProbe.RunWithBaselines(new ProbeOptions
        {
            Encoder = encoderPath,
            Data = options.Data,
            OutputDir = Path.Combine(options.OutputDir, ProbeFolder),
            Seed = options.Seed,
            Threads = options.Threads,
        }, log, progress);
        stages.Add(new(QuickstartStages.Probe, clock.Elapsed.TotalSeconds));

        string report = Path.Combine(options.OutputDir, ReportFileName);
        WriteReport(report, preset, pretrain, probes);
        return new QuickstartResult
        {
            Pretrain = pretrain,
            EncoderPath = encoderPath,
            Verify = verify,
            Probes = probes,
            Stages = stages,
            ReportPath = report,
        };
    }

    /// <summary><c>quickstart.csv</c>: one row per representation probed, with the pretraining run it belongs to.</summary>
    private static void WriteReport(string path, ModelPreset preset, PretrainResult pretrain, IReadOnlyList<ProbeResult> probes)
    {
        static string F(double v) => v.ToString("R", CultureInfo.InvariantCulture);
        DurableFile.WriteText(path, writer =>
        {
            using var csv = CsvWriter.Create(writer, new CsvWriterOptions(), leaveOpen: true);
            csv.WriteHeader(["representation", "preset", "pretrain_steps", "pretrain_epochs", "pretrain_seconds", "feature_dim", "top1", "top5"]);
            foreach (var p in probes)
            {
                bool pretrained = p.Name == LinearProbe.EncoderName;
                csv.WriteRecord([p.Name, p.Name == LinearProbe.RawPixelsName ? "" : preset.Name,
                                 pretrained ? pretrain.Steps.ToString(CultureInfo.InvariantCulture) : "0",
                                 pretrained ? F(pretrain.Plan.Epochs) : "0",
                                 pretrained ? F(pretrain.ElapsedSeconds) : "0",
                                 p.FeatureDim.ToString(CultureInfo.InvariantCulture), F(p.Top1), F(p.Top5)]);
            }
            csv.Flush();
        });
    }

    private static string Invariant(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);
}
