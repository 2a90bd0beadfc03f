using MoCoV3.Eval.Knn;
using MoCoV3.Export;
using MoCoV3.Models;
using MoCoV3.Tests.Cli;
using MoCoV3.Tests.Data;
using MoCoV3.Tests.Export;
using SkiaSharp;

namespace MoCoV3.Tests.Eval;

/// <summary><c>mocov3 knn</c> on an exported encoder.</summary>
[TestClass]
public sealed class KnnCommandTests
{
    public TestContext TestContext { get; set; } = null!;

    /// <summary>A random-init one-block ViT at Fashion-MNIST's 28x28, exported.</summary>
    private static string ExportFmnistModel(string dir)
    {
        var preset = PresetCatalog.Get("vit-tiny-fmnist").WithVit(vit => vit with { EmbedDim = 32, Depth = 1, Heads = 2 }).WithHeads(heads => heads with { HiddenDim = 64, OutDim = 32 }) with { Name = "knn-test-vit" };
        using var backbone = ExportTestModels.Build(preset);
        string path = Path.Combine(dir, "encoder.onnx");
        OnnxExporter.ExportToFile(backbone, preset, new ExportOptions(), path);
        return path;
    }

    [TestMethod]
    public void KnnCommandReportsAccuracyOnFashionMnist()
    {
        TestData.RequireFashionMnist();
        string dir = TestData.NewFolder("knn-");
        string model = ExportFmnistModel(dir);
        var (code, output, error) = CliTests.Mocov3("knn", "--encoder", model, "--limit", "1000", "--k", "10", "--batch", "128");
        Assert.AreEqual(0, code, error);
        TestContext.WriteLine(output);
        var line = output.Split('\n').Single(l => l.StartsWith("top1=", StringComparison.Ordinal));
        var fields = line.Split(' ').Select(f => f.Split('=')).ToDictionary(p => p[0], p => p[1]);
        double top1 = double.Parse(fields["top1"], System.Globalization.CultureInfo.InvariantCulture);
        double top5 = double.Parse(fields["top5"], System.Globalization.CultureInfo.InvariantCulture);
        // Random ViT features already separate Fashion-MNIST far above chance (0.1).
        Assert.IsTrue(top1 is > 0.4 and <= 1, line);
        Assert.IsTrue(top5 >= top1 && top5 <= 1, line);
        Assert.AreEqual(("10", "1000", "1000"), (fields["k"], fields["train"], fields["test"]));
        Assert.IsTrue(fields.ContainsKey("embed_s") && fields.ContainsKey("knn_s"), line);

        // The library gives the same numbers.
        var report = KnnEvaluator.Run(new KnnOptions { Encoder = model, K = 10, Batch = 128, Data = new() { Limit = 1000 } });
        Assert.AreEqual(top1, report.Result.Top1, 1e-4);
        Assert.IsFalse(report.HeldOut);
    }

    [TestMethod]
    public void KnnOnAFolderWithoutTestSplitHoldsQueriesOut()
    {
        string dir = TestData.NewFolder("knn-");
        string model = ExportFmnistModel(dir);
        // Two classes of clearly different images: dark and bright, 10 each, in shades.
        string images = Path.Combine(dir, "images");
        for (int i = 0; i < 10; i++)
        {
            byte dark = (byte)(10 + 3 * i), bright = (byte)(200 + 3 * i);
            TestFiles.WriteSolid(Path.Combine(images, "dark", $"{i}.png"), 28, 28, new SKColor(dark, dark, dark), SKEncodedImageFormat.Png);
            TestFiles.WriteStripes(Path.Combine(images, "bright", $"{i}.png"), 7, 28,
                [new SKColor(bright, bright, bright), SKColors.White, new SKColor(bright, bright, bright), SKColors.White], SKEncodedImageFormat.Png);
        }
        var report = KnnEvaluator.Run(new KnnOptions { Encoder = model, K = 3, Data = new() { Path = images } });
        Assert.IsTrue(report.HeldOut);
        Assert.AreEqual((16, 4), (report.Result.Train, report.Result.Test));
        Assert.AreEqual(1.0, report.Result.Top1, "the classes are separable");

        var (code, _, error) = CliTests.Mocov3("knn", "--encoder", model, "--data", Path.Combine(dir, "nothing-here"));
        Assert.AreEqual(2, code);
        StringAssert.Contains(error, Path.Combine(dir, "nothing-here"));
    }
}
