using System.Globalization;
using CsvHelper;
using MoCoV3.Eval.Probe;
using MoCoV3.Eval.Quickstart;
using MoCoV3.Tests.Cli;
using MoCoV3.Training;

namespace MoCoV3.Tests.Eval;

/// <summary>The main job end to end on small real subsets: pretrain, export, verify, probe with both baselines, report.</summary>
[TestClass]
public sealed class QuickstartTests
{
    private static string MicroPreset(string folder)
    {
        string path = Path.Combine(folder, "micro.json");
        File.WriteAllText(path, """
            { "name": "micro-quick", "arch": "vit", "image_size": 28, "channels": 1, "patch_size": 7, "embed_dim": 32, "depth": 1,
              "heads": 2, "hidden_dim": 64, "out_dim": 32, "batch": 64, "epochs": 1, "warmup_epochs": 0.1, "base_lr": 1e-3,
              "crop_min": 0.3, "mean": [0.286], "std": [0.353] }
            """);
        return path;
    }

    [TestMethod]
    public void QuickstartPretrainsExportsVerifiesAndProbesAgainstBothBaselines()
    {
        TestData.RequireFashionMnist();
        string folder = TestData.NewFolder("quickstart-");
        var options = new QuickstartOptions
        {
            Preset = MicroPreset(folder),
            OutputDir = folder,
            MaxSteps = 6,
            Seed = 3,
            Data = new() { Limit = 1000 },
        };
        var lines = new List<string>();
        var result = QuickstartRun.Run(options, new Pretrainer(), lines.Add);

        Assert.AreEqual(6, result.Pretrain.Steps);
        Assert.IsTrue(File.Exists(result.Pretrain.Checkpoint));
        Assert.IsTrue(File.Exists(Path.Combine(folder, QuickstartRun.EncoderFileName)));
        Assert.IsTrue(result.Verify.Passed, $"max_abs_diff {result.Verify.MaxAbsDiff}");
        Assert.AreEqual(QuickstartRun.VerifyImages, result.Verify.Batch);
        Assert.IsLessThan(1e-4, result.Verify.MaxAbsDiff);

        CollectionAssert.AreEqual(new[] { LinearProbe.EncoderName, LinearProbe.RawPixelsName, LinearProbe.RandomInitName },
                                  result.Probes.Select(p => p.Name).ToArray());
        Assert.AreEqual(32, result.Encoder.FeatureDim);
        Assert.AreEqual(784, result.Probes[1].FeatureDim);
        foreach (var p in result.Probes)
        {
            Assert.AreEqual(1000, p.TestCount);
            // Ten classes: chance is 0.1; even a barely trained 1-block encoder is far above it on 1000 images.
            Assert.IsGreaterThan(0.4, p.Top1, $"{p.Name} top1 {p.Top1}");
            Assert.IsGreaterThanOrEqualTo(p.Top1, p.Top5);
            Assert.IsTrue(File.Exists(p.ModelPath), p.ModelPath);
        }
        Assert.AreEqual(result.Probes.Skip(1).All(b => result.Encoder.Top1 > b.Top1), result.BeatsBaselines);

        CollectionAssert.AreEqual(new[] { QuickstartStages.Pretrain, QuickstartStages.Export, QuickstartStages.Probe },
                                  result.Stages.Select(s => s.Stage).ToArray());
        Assert.IsTrue(result.Stages.All(s => s.Seconds > 0));
        Assert.IsTrue(lines.Any(l => l.StartsWith("export: ", StringComparison.Ordinal)), string.Join("\n", lines));

        // quickstart.csv holds the same numbers, one row per representation.
        using var csv = CsvReader.Create(new StreamReader(result.ReportPath), new CsvReaderOptions { HasHeader = true }, leaveOpen: false);
        var rows = new List<(string Name, long Steps, double Top1, double Top5)>();
        while (csv.Read())
            rows.Add((csv.GetString("representation"), long.Parse(csv.GetString("pretrain_steps"), CultureInfo.InvariantCulture),
                      double.Parse(csv.GetString("top1"), CultureInfo.InvariantCulture), double.Parse(csv.GetString("top5"), CultureInfo.InvariantCulture)));
        Assert.HasCount(3, rows);
        for (int i = 0; i < 3; i++)
        {
            Assert.AreEqual(result.Probes[i].Name, rows[i].Name);
            Assert.AreEqual(result.Probes[i].Top1, rows[i].Top1);
            Assert.AreEqual(result.Probes[i].Top5, rows[i].Top5);
        }
        Assert.AreEqual(6, rows[0].Steps);
        Assert.AreEqual(0, rows[1].Steps);
    }

    [TestMethod]
    public void QuickstartCommandPrintsTheTableAndRefusesBadBudgets()
    {
        TestData.RequireFashionMnist();
        string folder = TestData.NewFolder("quickstart-cli-");
        var (code, output, error) = CliTests.Mocov3("quickstart", "--preset", MicroPreset(folder), "--out", folder,
                                                    "--limit", "600", "--max-steps", "3");
        Assert.AreEqual(0, code, error);
        foreach (var text in new[] { "MoCo v3 encoder", "raw pixels", "random-init encoder", "time per stage:", "max_abs_diff=", "quickstart.csv" })
            StringAssert.Contains(output, text);
        Assert.IsTrue(File.Exists(Path.Combine(folder, QuickstartRun.ProbeFolder, LinearProbe.ModelFileName)));

        (code, _, error) = CliTests.Mocov3("quickstart", "--minutes", "0", "--out", folder);
        Assert.AreEqual(2, code);
        StringAssert.Contains(error, "--minutes");

        (code, _, error) = CliTests.Mocov3("quickstart", "--data", "/nonexistent/fmnist", "--max-steps", "1", "--out", TestData.NewFolder());
        Assert.AreEqual(2, code);
        StringAssert.Contains(error, "/nonexistent/fmnist");
    }
}
