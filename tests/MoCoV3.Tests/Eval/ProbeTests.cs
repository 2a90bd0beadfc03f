using MoCoV3.Inference;
using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using Microsoft.ML;
using Microsoft.ML.Data;
using MoCoV3.Cli.Commands;
using MoCoV3.Data;
using MoCoV3.Eval.Probe;
using MoCoV3.Export;
using MoCoV3.Models;
using MoCoV3.Tests.Export;
using SkiaSharp;

namespace MoCoV3.Tests.Eval;

/// <summary>
/// The ML.NET linear probe on small real Fashion-MNIST subsets, with a 1-block ViT for 28x28 images whose weights are
/// seeded and perturbed (a fixed random encoder: its features are still far better than chance).
/// </summary>
[TestClass]
public sealed class ProbeTests
{
    private const int Subset = 1000;
    private static readonly Lazy<(string Folder, IReadOnlyList<ProbeResult> Results)> Shared = new(RunShared);

    private static ModelPreset Micro28 => TestPresets.MicroVit.WithVit(vit => vit with { PatchSize = 7, Depth = 1 }).WithInput(input => input with { ImageSize = 28 }) with { Name = "micro-28" };

    private static string ExportEncoder(string folder)
    {
        string path = Path.Combine(folder, "encoder.onnx");
        using var backbone = ExportTestModels.Build(Micro28, seed: 5);
        OnnxExporter.ExportToFile(backbone, Micro28, new ExportOptions(), path);
        return path;
    }

    /// <summary>One probe with baselines on the first 1000 images of each split, shared by the tests that read it.</summary>
    private static (string, IReadOnlyList<ProbeResult>) RunShared()
    {
        string folder = TestData.NewFolder("probe-");
        var options = new ProbeOptions
        {
            Encoder = ExportEncoder(folder),
            OutputDir = Path.Combine(folder, "out"),
            Seed = 1,
            Data = new() { Limit = Subset },
        };
        return (folder, LinearProbe.RunWithBaselines(options, line => Console.WriteLine($"[probe test] {line}")));
    }

    [TestMethod]
    public void Probe_OnRealSubset_IsWellAboveChance_AndReportsWhatItMeasured()
    {
        TestData.RequireFashionMnist();
        var probe = Shared.Value.Results[0];
        Assert.AreEqual(LinearProbe.EncoderName, probe.Name);
        Assert.AreEqual(Subset, probe.TrainCount);
        Assert.AreEqual(Subset, probe.TestCount);
        Assert.AreEqual(32, probe.FeatureDim);
        // Chance is 0.1 (top-1) and 0.5 (top-5); a fixed random ViT's class token measured 0.6-0.7 top-1 on this subset.
        Assert.IsGreaterThan(0.5, probe.Top1, $"top1 {probe.Top1}");
        Assert.IsGreaterThan(0.9, probe.Top5, $"top5 {probe.Top5}");
        Assert.IsGreaterThanOrEqualTo(probe.Top1, probe.Top5);
        CollectionAssert.Contains(new ProbeOptions { Encoder = "x" }.L2Candidates.ToList(), probe.BestL2);
        Assert.AreEqual(4, probe.Sweep.Count);
        Assert.AreEqual(probe.Sweep.Max(s => s.Accuracy), probe.Sweep.First(s => s.L2 == probe.BestL2).Accuracy);

        // The confusion matrix holds every test image once; its diagonal is top-1; per-class accuracy is its rows' diagonal.
        double total = probe.ConfusionMatrix.Sum(row => row.Sum());
        double diagonal = Enumerable.Range(0, 10).Sum(c => probe.ConfusionMatrix[c][c]);
        Assert.AreEqual(Subset, total);
        Assert.AreEqual(probe.Top1, diagonal / total, 1e-12);
        for (int c = 0; c < 10; c++)
            Assert.AreEqual(probe.ConfusionMatrix[c][c] / probe.ConfusionMatrix[c].Sum(), probe.PerClassAccuracy[c], 1e-12);

        // Stages were timed.
        foreach (string stage in new[] { ProbeStages.FeaturizeTrain, ProbeStages.FeaturizeTest, ProbeStages.Sweep, ProbeStages.Fit, ProbeStages.Save })
            Assert.IsGreaterThan(0.0, probe.Seconds(stage), stage);

        // report.csv says the same.
        var rows = ProbeReport.Read(probe.ReportPath);
        Assert.AreEqual(probe.Top1, rows.Single(r => r.Metric == "top1").Accuracy, 1e-12);
        Assert.AreEqual(probe.Top5, rows.Single(r => r.Metric == "top5").Accuracy, 1e-12);
        var classRows = rows.Where(r => r.Metric == "class").ToList();
        CollectionAssert.AreEqual(FashionMnist.ClassNames.ToList(), classRows.Select(r => r.Class).ToList());
        Assert.AreEqual(Subset, classRows.Sum(r => r.Images));
        Assert.AreEqual(probe.PerClassAccuracy[6], classRows[6].Accuracy, 1e-12);
        Assert.AreEqual(4, rows.Count(r => r.Metric == "holdout"));

        // confusion.png: each diagonal cell is shaded by its row fraction, which is this class's accuracy.
        using var png = SKBitmap.Decode(probe.ConfusionMatrixPath);
        Assert.IsNotNull(png);
        for (int c = 0; c < 10; c++)
        {
            var at = ConfusionMatrixImage.CellCenter(FashionMnist.ClassNames, c, c);
            Assert.AreEqual(ConfusionMatrixImage.Shade(probe.PerClassAccuracy[c]), png.GetPixel(at.X, at.Y), $"cell {c},{c}");
        }
        Assert.IsTrue(File.Exists(probe.ModelPath));
    }

    [TestMethod]
    public void Baselines_RawPixelsAndRandomInit_AreProbedTheSameWay()
    {
        TestData.RequireFashionMnist();
        var (folder, results) = Shared.Value;
        CollectionAssert.AreEqual(new[] { LinearProbe.EncoderName, LinearProbe.RawPixelsName, LinearProbe.RandomInitName },
                                  results.Select(r => r.Name).ToArray());
        var raw = results[1];
        Assert.AreEqual(28 * 28, raw.FeatureDim);
        // Logistic regression on the pixels of 1000 Fashion-MNIST images: 0.78-0.80 measured; chance is 0.1.
        Assert.IsGreaterThan(0.72, raw.Top1, $"raw-pixel top1 {raw.Top1}");
        var random = results[2];
        Assert.AreEqual(32, random.FeatureDim);
        Assert.IsGreaterThan(0.4, random.Top1, $"random-init top1 {random.Top1}");
        // The random-init encoder has other weights than the probed one, so its numbers differ.
        Assert.AreNotEqual(results[0].Top1, random.Top1);
        foreach (var r in results.Skip(1))
        {
            StringAssert.StartsWith(r.ModelPath, Path.Combine(folder, "out", LinearProbe.BaselinesFolder, r.Name));
            Assert.IsTrue(File.Exists(r.ModelPath) && File.Exists(r.ReportPath) && File.Exists(r.ConfusionMatrixPath), r.Name);
        }
    }

    [TestMethod]
    public void ProbeFeatures_AreTheEmbeddingsOfOnnxRuntime()
    {
        TestData.RequireFashionMnist();
        string folder = TestData.NewFolder("probe-");
        string encoder = ExportEncoder(folder);
        var ml = new MLContext(0);
        var dataset = FashionMnist.Load(null, train: false, limit: 300);
        var split = PixelSplit.Read(dataset, Enumerable.Range(0, 300).ToArray(), dataset.Source);
        using var features = EncoderFeatures.Open(ml, encoder, EncoderFeatures.PathSchema(), ProbeColumns.ImagePath, threads: 2);
        var done = new List<int>();
        var set = features.Featurize(split, done.Add); // batches of 256 and 44

        using var runner = new OnnxModelRunner(encoder);
        float[] pixels = Enumerable.Range(0, 300).SelectMany(split.ImageAsFloats).ToArray();
        float[] expected = runner.Embed(pixels, 300);
        Assert.AreEqual(expected.Length, set.Values.Length);
        double maxDiff = expected.Zip(set.Values, (a, b) => Math.Abs(a - b)).Max();
        Assert.IsLessThan(1e-5, maxDiff, $"max |probe features - ORT| = {maxDiff}");
        CollectionAssert.AreEqual(new[] { 256, 300 }, done, "progress after each batch");
    }

    [TestMethod]
    public void SavedProbe_TakesImagePaths_AndPredictsTheSameInAnotherProcess()
    {
        TestData.RequireFashionMnist();
        var probe = Shared.Value.Results[0];
        string folder = TestData.NewFolder("probe-app-");
        var test = FashionMnist.Load(null, train: false, limit: 8);
        var files = new List<string>();
        for (int i = 0; i < test.Count; i++)
        {
            string file = Path.Combine(folder, $"test{i}.png");
            WriteGreyPng(file, test.GetImage(i));
            files.Add(file);
        }

        // In this process: the saved model, loaded back, on the image files.
        var ml = new MLContext();
        var model = ml.Model.Load(probe.ModelPath, out var inputSchema);
        Assert.AreEqual(TextDataViewType.Instance, inputSchema[ProbeColumns.ImagePath].Type);
        using var engine = ml.Model.CreatePredictionEngine<Input, Output>(model);
        var expected = files.Select(f => engine.Predict(new Input { ImagePath = f })).ToList();

        var lines = Inference.PredictHost.Predict(probe.ModelPath, files);
        Assert.AreEqual(files.Count, lines.Count);
        int correct = 0;
        for (int i = 0; i < files.Count; i++)
        {
            Assert.AreEqual(files[i], lines[i].Path);
            Assert.AreEqual(expected[i].PredictedLabel, lines[i].Label, $"image {i}");
            CollectionAssert.AreEqual(expected[i].Score, lines[i].Scores, $"image {i}");
            if (lines[i].Label == FashionMnist.ClassNames[test.GetLabel(i)]) correct++;
        }
        Assert.IsGreaterThanOrEqualTo(4, correct, "most of 8 test images are classified correctly");
    }

    [TestMethod]
    public void ProbeOfDataViews_FitsOnImagePathsAndLabels()
    {
        TestData.RequireFashionMnist();
        string folder = TestData.NewFolder("probe-dataview-");
        var source = FashionMnist.Load(null, train: true, limit: 400);
        var rows = Enumerable.Range(0, source.Count).Select(i =>
        {
            string file = Path.Combine(folder, "images", $"{i}.png");
            Directory.CreateDirectory(Path.GetDirectoryName(file)!);
            WriteGreyPng(file, source.GetImage(i));
            return new Input { ImagePath = file, Label = FashionMnist.ClassNames[source.GetLabel(i)] };
        }).ToArray();
        var ml = new MLContext(3);
        var train = ml.Data.LoadFromEnumerable(rows[..300]);
        var test = ml.Data.LoadFromEnumerable(rows[300..]);
        var options = new ProbeOptions { Encoder = ExportEncoder(folder), OutputDir = Path.Combine(folder, "out"), Seed = 3 };
        var result = LinearProbe.Run(ml, train, test, options);
        Assert.AreEqual((300, 100, 32), (result.TrainCount, result.TestCount, result.FeatureDim));
        CollectionAssert.AreEqual(FashionMnist.ClassNames.OrderBy(n => n, StringComparer.Ordinal).ToList(), result.ClassNames.ToList());
        Assert.IsGreaterThan(0.4, result.Top1, $"top1 {result.Top1} on 100 images (chance 0.1)");

        // The saved model scores the test rows as the probe did: its accuracy on them is the reported top-1.
        var model = ml.Model.Load(result.ModelPath, out _);
        var predictions = ml.Data.CreateEnumerable<Output>(model.Transform(test), reuseRowObject: false).ToList();
        double accuracy = predictions.Zip(rows[300..], (p, r) => p.PredictedLabel == r.Label ? 1.0 : 0.0).Average();
        Assert.AreEqual(result.Top1, accuracy, 1e-12);
    }

    [TestMethod]
    public void BadEncoderOrMissingData_GiveErrorsNamingThePath()
    {
        string folder = TestData.NewFolder("probe-bad-");
        string garbage = Path.Combine(folder, "garbage.onnx");
        File.WriteAllText(garbage, "this is not a protobuf");
        var bad = Assert.ThrowsExactly<InvalidDataException>(() => LinearProbe.Run(new ProbeOptions { Encoder = garbage }));
        StringAssert.StartsWith(bad.Message, garbage + ": not an ONNX model");

        string missing = Path.Combine(folder, "missing.onnx");
        var notFound = Assert.ThrowsExactly<FileNotFoundException>(() => LinearProbe.Run(new ProbeOptions { Encoder = missing }));
        StringAssert.Contains(notFound.Message, missing);

        string encoder = ExportEncoder(folder);
        string noData = Path.Combine(folder, "no-such-data");
        var noDataError = Assert.Throws<Exception>(() => LinearProbe.Run(new ProbeOptions { Encoder = encoder, Data = new() { Path = noData } }));
        Assert.IsTrue(noDataError is FileNotFoundException or DirectoryNotFoundException, noDataError.GetType().Name);
        StringAssert.Contains(noDataError.Message, noData);

        // The command line turns them into one line and exit code 2.
        var (code, _, stderr) = Cli("probe", "--encoder", garbage, "--out", Path.Combine(folder, "out"));
        Assert.AreEqual(2, code);
        StringAssert.StartsWith(stderr, $"error: {garbage}: not an ONNX model");
        (code, _, stderr) = Cli("probe", "--encoder", encoder, "--data", noData, "--out", Path.Combine(folder, "out"));
        Assert.AreEqual(2, code);
        StringAssert.Contains(stderr, noData);
    }

    [TestMethod]
    public void CsvManifest_IsSplitIntoTrainAndTest_AndProbed()
    {
        TestData.RequireFashionMnist();
        string folder = TestData.NewFolder("probe-csv-");
        var train = FashionMnist.Load(null, train: true, limit: 300);
        var lines = new List<string> { "path,label" };
        for (int i = 0; i < train.Count; i++)
        {
            string file = Path.Combine(folder, $"img{i}.png");
            WriteGreyPng(file, train.GetImage(i));
            lines.Add($"{file},{FashionMnist.ClassNames[train.GetLabel(i)].Replace('/', '-')}");
        }
        string manifest = Path.Combine(folder, "data.csv");
        File.WriteAllLines(manifest, lines);

        var (code, stdout, stderr) = Cli("probe", "--encoder", ExportEncoder(folder), "--data", manifest, "--out", Path.Combine(folder, "out"));
        Assert.AreEqual(0, code, stderr);
        StringAssert.Contains(stdout, "load: 240 train and 60 test images");
        var top1Line = stdout.Split('\n').Single(l => l.StartsWith("top1=", StringComparison.Ordinal));
        double top1 = double.Parse(top1Line.Split(' ')[0]["top1=".Length..], CultureInfo.InvariantCulture);
        Assert.IsGreaterThan(0.3, top1, top1Line);
        Assert.IsTrue(File.Exists(Path.Combine(folder, "out", LinearProbe.ModelFileName)));
    }

    private static void WriteGreyPng(string path, ReadOnlySpan<byte> image)
    {
        using var bitmap = new SKBitmap(new SKImageInfo(28, 28, SKColorType.Gray8, SKAlphaType.Opaque));
        image.CopyTo(bitmap.GetPixelSpan());
        using var encoded = bitmap.Encode(SKEncodedImageFormat.Png, 100);
        File.WriteAllBytes(path, encoded.ToArray());
    }

    private static (int Code, string Out, string Err) Cli(params string[] args)
    {
        var root = new RootCommand { ProbeCommand.Create() };
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        var (oldOut, oldErr) = (Console.Out, Console.Error);
        Console.SetOut(stdout);
        Console.SetError(stderr);
        try
        {
            return (root.Parse(args).Invoke(), stdout.ToString(), stderr.ToString());
        }
        finally
        {
            Console.SetOut(oldOut);
            Console.SetError(oldErr);
        }
    }

    public sealed class Input
    {
        public string ImagePath { get; set; } = "";
        public string Label { get; set; } = "";
    }

    public sealed class Output
    {
        public string PredictedLabel { get; set; } = "";
        public float[] Score { get; set; } = [];
    }
}
