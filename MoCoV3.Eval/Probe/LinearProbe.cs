using System.Diagnostics;
using System.Globalization;
using Microsoft.ML;
using Microsoft.ML.Data;
using MoCoV3.Data;
using MoCoV3.IO;

namespace MoCoV3.Eval.Probe;

/// <summary>
/// The linear probe of an exported encoder in ML.NET: image → the encoder (<c>ApplyImageEncoder</c>, batched) →
/// standardisation → L-BFGS maximum entropy → the predicted class name. The encoder runs once per image; the L2 sweep (on a
/// held-out part of the training split), the final fit on the whole training split and the evaluation on the test split
/// all read the cached features. The saved <c>probe.zip</c> starts with the encoder, so an application gives it image
/// paths (<see cref="ProbeColumns.ImagePath"/>) and reads <see cref="ProbeColumns.PredictedLabel"/> and
/// <see cref="ProbeColumns.Score"/>.
/// </summary>
public static class LinearProbe
{
    public const string EncoderName = "encoder";
    public const string RawPixelsName = "raw-pixels";
    public const string RandomInitName = "random-init";

    public const string ModelFileName = "probe.zip";
    public const string ReportFileName = "report.csv";
    public const string ConfusionMatrixFileName = "confusion.png";

    /// <summary>The sub-folder of <see cref="ProbeOptions.OutputDir"/> where each baseline writes its files.</summary>
    public const string BaselinesFolder = "baselines";

    /// <summary>Probes the encoder of <paramref name="options"/>; <paramref name="log"/> gets one line per stage.</summary>
    public static ProbeResult Run(ProbeOptions options, Action<string>? log = null, IProgress<ProbeProgress>? progress = null) =>
        Run(options, baselines: false, log, progress)[0];

    /// <summary>
    /// Probes the encoder, then with the same data, trainer and sweep the two baselines: <see cref="RawPixelsName"/> (the
    /// classifier on the pixel vector) and <see cref="RandomInitName"/> (the encoder's architecture, from its metadata,
    /// with seeded random weights). Returns the three results in that order.
    /// </summary>
    public static IReadOnlyList<ProbeResult> RunWithBaselines(ProbeOptions options, Action<string>? log = null, IProgress<ProbeProgress>? progress = null) =>
        Run(options, baselines: true, log, progress);

    /// <summary>
    /// The probe inside an ML.NET application: <paramref name="train"/> and <paramref name="test"/> have an image column
    /// (paths, or encoded images as a byte vector) and a text label column. The encoder is <see cref="ProbeOptions.Encoder"/>;
    /// the files go to <see cref="ProbeOptions.OutputDir"/>; the data options (path, kind, limit) are not used. The
    /// saved <c>probe.zip</c> takes rows with <paramref name="train"/>'s schema.
    /// </summary>
    public static ProbeResult Run(MLContext ml, IDataView train, IDataView test, ProbeOptions options, string imageColumn = ProbeColumns.ImagePath,
                                  string labelColumn = ProbeColumns.Label, Action<string>? log = null)
    {
        ArgumentNullException.ThrowIfNull(ml);
        ArgumentNullException.ThrowIfNull(train);
        ArgumentNullException.ThrowIfNull(test);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        log ??= _ => { };
        foreach (var (view, what) in new[] { (train, "training"), (test, "test") })
            if (view.Schema.GetColumnOrNull(labelColumn)?.Type is not TextDataViewType)
                throw new ArgumentException($"the {what} data has no text label column '{labelColumn}'");
        var classNames = ClassNamesOf(train, labelColumn);
        if (classNames.Count < 2) throw new ArgumentException($"expected at least 2 classes in column '{labelColumn}', found {classNames.Count}");

        var clock = Stopwatch.StartNew();
        using var encoder = EncoderFeatures.Open(ml, options.Encoder, train.Schema, imageColumn, options.Threads);
        var stages = new List<StageTime> { new(ProbeStages.Load, clock.Elapsed.TotalSeconds) };
        var trainFeatures = Timed(stages, ProbeStages.FeaturizeTrain, () => encoder.Featurize(train, labelColumn, classNames, "the training data"));
        var testFeatures = Timed(stages, ProbeStages.FeaturizeTest, () => encoder.Featurize(test, labelColumn, classNames, "the test data"));
        log(Invariant($"{EncoderName}: featurized {trainFeatures.Count + testFeatures.Count} images → {encoder.Dim} features ") +
            Invariant($"({stages[^1].Seconds + stages[^2].Seconds:F1} s)"));
        return Probe(ml, EncoderName, trainFeatures, testFeatures, encoder.Transformer, train.Schema, options, options.OutputDir, stages, log, null);
    }

    private static List<ProbeResult> Run(ProbeOptions options, bool baselines, Action<string>? log, IProgress<ProbeProgress>? progress)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        log ??= _ => { };
        var ml = new MLContext((int)options.Seed);

        var clock = Stopwatch.StartNew();
        var pathSchema = EncoderFeatures.PathSchema();
        using var encoder = EncoderFeatures.Open(ml, options.Encoder, pathSchema, ProbeColumns.ImagePath, options.Threads);
        var (train, test) = LoadSplits(options, encoder.Encoder.Channels, encoder.Encoder.InputSize);
        double load = clock.Elapsed.TotalSeconds;
        log(Invariant($"load: {train.Count} train and {test.Count} test images of {train.Channels}x{train.Height}x{train.Width}, ") +
            Invariant($"{train.ClassNames.Count} classes; encoder {Path.GetFileName(options.Encoder)} → {encoder.Dim} features ({load:F1} s)"));

        var results = new List<ProbeResult> { ProbeEncoder(ml, EncoderName, encoder, train, test, options, options.OutputDir, load, log, progress) };
        if (!baselines) return results;

        string baselineRoot = Path.Combine(options.OutputDir, BaselinesFolder);
        var pixelStages = new List<StageTime> { new(ProbeStages.Load, 0) };
        var trainPixels = Timed(pixelStages, ProbeStages.FeaturizeTrain, () => FeatureSet.FromPixels(train));
        var testPixels = Timed(pixelStages, ProbeStages.FeaturizeTest, () => FeatureSet.FromPixels(test));
        log(Invariant($"{RawPixelsName}: {trainPixels.Dim} pixel features"));
        results.Add(Probe(ml, RawPixelsName, trainPixels, testPixels, null, PixelSplit.InputSchema(train.ImageBytes), options,
                          Path.Combine(baselineRoot, RawPixelsName), pixelStages, log, progress));

        string randomPath = Path.Combine(Path.GetTempPath(), $"mocov3-random-init-{Guid.NewGuid():N}.onnx");
        try
        {
            clock.Restart();
            var preset = RandomInitEncoder.Export(encoder.Encoder.Metadata.All, options.Encoder, (int)options.Seed, randomPath);
            using var random = EncoderFeatures.Open(ml, randomPath, pathSchema, ProbeColumns.ImagePath, options.Threads);
            double build = clock.Elapsed.TotalSeconds;
            log(Invariant($"{RandomInitName}: built '{preset.Name}' with seed {options.Seed} and exported it ({build:F1} s)"));
            results.Add(ProbeEncoder(ml, RandomInitName, random, train, test, options, Path.Combine(baselineRoot, RandomInitName), build, log, progress));
        }
        finally
        {
            File.Delete(randomPath);
        }
        return results;
    }

    private static ProbeResult ProbeEncoder(MLContext ml, string name, EncoderFeatures encoder, PixelSplit train, PixelSplit test, ProbeOptions options,
                                            string folder, double loadSeconds, Action<string> log, IProgress<ProbeProgress>? progress)
    {
        var stages = new List<StageTime> { new(ProbeStages.Load, loadSeconds) };
        int total = train.Count + test.Count;
        var trainFeatures = Timed(stages, ProbeStages.FeaturizeTrain,
            () => encoder.Featurize(train, done => progress?.Report(new ProbeProgress(name, ProbeStages.FeaturizeTrain, done, total))));
        var testFeatures = Timed(stages, ProbeStages.FeaturizeTest,
            () => encoder.Featurize(test, done => progress?.Report(new ProbeProgress(name, ProbeStages.FeaturizeTest, train.Count + done, total))));
        double featurize = stages[^1].Seconds + stages[^2].Seconds;
        log(Invariant($"{name}: featurized {total} images in {featurize:F1} s ({total / Math.Max(featurize, 1e-9):F0} img/s, ") +
            Invariant($"batches of {encoder.Encoder.MaxBatch})"));
        return Probe(ml, name, trainFeatures, testFeatures, encoder.Transformer, EncoderFeatures.PathSchema(), options, folder, stages, log, progress);
    }

    private static ProbeResult Probe(MLContext ml, string name, FeatureSet trainFeatures, FeatureSet testFeatures, ITransformer? featurizer,
                                     DataViewSchema savedInput, ProbeOptions options, string folder, List<StageTime> stages, Action<string> log,
                                     IProgress<ProbeProgress>? progress)
    {
        int threads = options.ThreadCount;
        var (fitRows, holdoutRows) = HoldoutSplit(trainFeatures.Count, options.HoldoutFraction, (int)options.Seed);
        // The sweep fits on a subsample (the shuffled fit rows' first SweepRows) with each candidate scaled to it.
        int[] sweepRows = options.SweepRows is int n && n < fitRows.Length ? fitRows[..n] : fitRows;
        double scale = sweepRows.Length / (double)trainFeatures.Count;
        int step = 0, steps = options.L2Candidates.Count == 1 ? 1 : options.L2Candidates.Count + 1;
        var sweep = Timed(stages, ProbeStages.Sweep, () => options.L2Candidates.Count == 1
            ? [(options.L2Candidates[0], double.NaN)]
            : options.L2Candidates.Select(l2 =>
              {
                  progress?.Report(new ProbeProgress(name, ProbeStages.Sweep, step++, steps));
                  var fitted = ProbeTrainer.Fit(ml, trainFeatures, sweepRows, (float)(l2 * scale), options.SweepIterations, threads);
                  return (L2: l2, Accuracy: ProbeTrainer.Evaluate(ml, fitted, trainFeatures, holdoutRows).MicroAccuracy);
              }).ToList());
        float bestL2 = sweep.MaxBy(s => s.Accuracy).L2;
        log(Invariant($"{name}: L2 sweep ({sweepRows.Length} rows, L2 x{scale:G3}, {options.SweepIterations} iterations) on {holdoutRows.Length} held-out images: ") +
            string.Join(", ", sweep.Select(s => Invariant($"{s.L2:G3} → {s.Accuracy:F4}"))) + Invariant($"; best {bestL2:G3} ({stages[^1].Seconds:F1} s)"));

        progress?.Report(new ProbeProgress(name, ProbeStages.Fit, step, steps));
        var final = Timed(stages, ProbeStages.Fit, () => ProbeTrainer.Fit(ml, trainFeatures, null, bestL2, options.MaxIterations, threads));
        progress?.Report(new ProbeProgress(name, ProbeStages.Fit, steps, steps));
        log(Invariant($"{name}: fitted on {trainFeatures.Count}x{trainFeatures.Dim} features ({stages[^1].Seconds:F1} s)"));
        var metrics = Timed(stages, ProbeStages.Evaluate, () => ProbeTrainer.Evaluate(ml, final, testFeatures));

        var counts = metrics.ConfusionMatrix.Counts;
        var classNames = trainFeatures.ClassNames;
        var perClass = Enumerable.Range(0, classNames.Count)
            .Select(c => counts[c].Sum() is var total && total > 0 ? counts[c][c] / total : double.NaN).ToArray();

        var clock = Stopwatch.StartNew();
        Directory.CreateDirectory(folder);
        var result = new ProbeResult
        {
            Name = name,
            Top1 = metrics.MicroAccuracy,
            Top5 = metrics.TopKAccuracy,
            ClassNames = classNames,
            PerClassAccuracy = perClass,
            ConfusionMatrix = counts,
            BestL2 = bestL2,
            Sweep = sweep,
            FeatureDim = trainFeatures.Dim,
            TrainCount = trainFeatures.Count,
            TestCount = testFeatures.Count,
            Stages = stages,
            ModelPath = Path.Combine(folder, ModelFileName),
            ReportPath = Path.Combine(folder, ReportFileName),
            ConfusionMatrixPath = Path.Combine(folder, ConfusionMatrixFileName),
        };
        var model = ProbeTrainer.ForPrediction(ml, featurizer, final, trainFeatures);
        DurableFile.Write(result.ModelPath, stream => ml.Model.Save(model, savedInput, stream));
        ProbeReport.Write(result.ReportPath, result, holdoutRows.Length);
        ConfusionMatrixImage.Write(result.ConfusionMatrixPath, counts, classNames,
            Invariant($"{name}: top-1 {metrics.MicroAccuracy:P1} on {testFeatures.Count} test images"));
        stages.Add(new StageTime(ProbeStages.Save, clock.Elapsed.TotalSeconds));
        log(Invariant($"{name}: top1={result.Top1:F4} top5={result.Top5:F4} (evaluate {result.Seconds(ProbeStages.Evaluate):F1} s, ") +
            Invariant($"save {result.Seconds(ProbeStages.Save):F1} s) → {folder}"));
        return result;
    }

    private static T Timed<T>(List<StageTime> stages, string stage, Func<T> work)
    {
        var clock = Stopwatch.StartNew();
        T result = work();
        stages.Add(new StageTime(stage, clock.Elapsed.TotalSeconds));
        return result;
    }

    /// <summary>The distinct labels of <paramref name="data"/>, in ordinal order.</summary>
    private static List<string> ClassNamesOf(IDataView data, string labelColumn)
    {
        var column = data.Schema[labelColumn];
        var names = new SortedSet<string>(StringComparer.Ordinal);
        using var cursor = data.GetRowCursor([column]);
        var getter = cursor.GetGetter<ReadOnlyMemory<char>>(column);
        ReadOnlyMemory<char> value = default;
        while (cursor.MoveNext())
        {
            getter(ref value);
            names.Add(value.ToString());
        }
        return names.ToList();
    }

    /// <summary>
    /// The training and test images. A dataset with two splits gives the first <see cref="DataOptions.Limit"/> of each; one
    /// with a single split (a CSV manifest, a folder without train/test) is shuffled with the seed and
    /// <see cref="ProbeOptions.TestFraction"/> of it becomes the test split.
    /// </summary>
    private static (PixelSplit Train, PixelSplit Test) LoadSplits(ProbeOptions options, int channels, int size)
    {
        var trainSet = options.Data.Open(size, channels, train: true);
        var testSet = options.Data.Open(size, channels, train: false);
        int limit = options.Data.Limit ?? int.MaxValue;
        PixelSplit train, test;
        if (trainSet.Source == testSet.Source)
        {
            if (trainSet.Count < 2)
                throw new DataFormatException(trainSet.Source, null, $"expected at least 2 images to split into train and test, found {trainSet.Count}");
            int[] order = Enumerable.Range(0, trainSet.Count).ToArray();
            new Random((int)options.Seed).Shuffle(order);
            int testCount = Math.Clamp((int)Math.Round(order.Length * options.TestFraction), 1, order.Length - 1);
            test = PixelSplit.Read(trainSet, order.Take(testCount).Take(limit).ToArray(), $"{trainSet.Source} (test part)");
            train = PixelSplit.Read(trainSet, order.Skip(testCount).Take(limit).ToArray(), $"{trainSet.Source} (train part)");
        }
        else
        {
            train = PixelSplit.Read(trainSet, Enumerable.Range(0, Math.Min(trainSet.Count, limit)).ToArray(), trainSet.Source);
            test = PixelSplit.Read(testSet, Enumerable.Range(0, Math.Min(testSet.Count, limit)).ToArray(), testSet.Source);
            if (!train.ClassNames.SequenceEqual(test.ClassNames))
                throw new DataFormatException(testSet.Source, null, $"expected the classes of the training split {trainSet.Source} " +
                    $"({string.Join(", ", train.ClassNames)}), found {string.Join(", ", test.ClassNames)}");
        }
        if (train.ClassNames.Count < 2)
            throw new DataFormatException(trainSet.Source, null, $"expected at least 2 classes for a classifier, found {train.ClassNames.Count}");
        return (train, test);
    }

    /// <summary>A seeded shuffle of the training rows: the first <paramref name="fraction"/> (at least one) held out.</summary>
    private static (int[] Fit, int[] Holdout) HoldoutSplit(int count, double fraction, int seed)
    {
        if (count < 2) throw new ArgumentException($"at least 2 training images are needed to hold some out, found {count}");
        int[] order = Enumerable.Range(0, count).ToArray();
        new Random(seed).Shuffle(order);
        int holdout = Math.Clamp((int)Math.Round(count * fraction), 1, count - 1);
        return (order[holdout..], order[..holdout]);
    }

    private static string Invariant(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);
}
