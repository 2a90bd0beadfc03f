using System.Globalization;
using MoCoV3.Data;
using MoCoV3.Eval.Classification;
using MoCoV3.Eval.FineTune;
using MoCoV3.Eval.LinearEval;
using MoCoV3.Export;
using MoCoV3.Checkpoints;
using MoCoV3.Inference;
using MoCoV3.Models;
using SkiaSharp;
using static TorchSharp.torch;

namespace MoCoV3.Tests.Eval;

/// <summary>
/// Every preset/embedding combination fine-tunes (or is linearly evaluated), exports, verifies and loads in
/// <see cref="ImageClassifier"/> with the data's class names, and the ONNX probabilities equal the softmax of TorchSharp's
/// logits on real Fashion-MNIST images. The ViT embeddings other than <c>cls</c> are wider than the class token a head
/// reads (the bug: verification compared the ONNX <c>embedding</c> with the class token and failed for them).
/// </summary>
[TestClass]
public sealed class ClassifierExportTests
{
    public TestContext TestContext { get; set; } = null!;

    private static readonly string[] FashionNames = FashionMnist.ClassNames.ToArray();

    /// <summary>
    /// A short fine-tuning run whose head moves in a few steps (logits of a few units, so that 1e-4 on probabilities means
    /// something): a high lr, no warmup, plain labels (no mixup, cutmix or smoothing), one thread, seed 1.
    /// </summary>
    private static FineTuneOptions PlainLabelFineTune(string checkpoint, string onnx, string dir, long steps, int batch, DataOptions data) => new()
    {
        Weights = new() { Checkpoint = checkpoint },
        OnnxPath = onnx,
        OutputDir = Path.Combine(dir, "run"),
        MaxSteps = steps,
        Batch = batch,
        Seed = 1,
        Lr = 0.03,
        WarmupSteps = 0,
        MixupAlpha = 0,
        CutmixAlpha = 0,
        LabelSmoothing = 0,
        Data = data,
        Compute = new() { Threads = 1 },
    };

    [TestMethod]
    [DataRow("cls", 32)]
    [DataRow("cls+mean", 64)]
    [DataRow("cls@last2", 64)]
    [DataRow("cls+mean@last2", 128)]
    public void FineTunedVitOfEveryEmbeddingExportsVerifiesAndClassifies(string embedding, int width)
    {
        TestData.RequireFashionMnist();
        string dir = TestData.NewFolder("ft-embedding-");
        var preset = EvalTestModels.MicroVit28.WithEmbedding(embedding);
        var result = new FineTuner().Run(PlainLabelFineTune(EvalTestModels.ToolkitCheckpoint(preset, dir), Path.Combine(dir, "classifier.onnx"), dir,
                                                             steps: 2, batch: 32, new() { Limit = 64, TestLimit = 32 }));
        TestContext.WriteLine($"{embedding}: logits {result.Verify!.Logits}; embedding {result.Verify!.Embedding}");
        Assert.IsTrue(result.Verify!.Passed, $"{result.Verify!.Logits} / {result.Verify!.Embedding}");
        Assert.AreEqual(16, result.Verify!.Embedding.Batch);

        using var classifier = ImageClassifier.Load(result.OnnxPath);
        Assert.AreEqual(embedding, classifier.Metadata.Embedding);
        Assert.AreEqual(width, classifier.Metadata.EmbeddingDim);
        AssertProbabilitiesMatchTorch(classifier, result.Checkpoint, FashionTestImages(dir, 6), FashionNames);
    }

    [TestMethod]
    public void FineTunedResNetOnACsvManifestCarriesItsLabels()
    {
        TestData.RequireFashionMnist();
        string dir = TestData.NewFolder("ft-resnet-csv-");
        // Labels as a CSV names them; the classes are the distinct labels in ordinal order.
        var labels = new Dictionary<int, string> { [1] = "trousers", [8] = "handbag", [9] = "boots" };
        string csv = WriteCsvManifest(Path.Combine(dir, "data"), labels, perClass: 12);
        var preset = EvalTestModels.MicroResNet28;
        var result = new FineTuner().Run(PlainLabelFineTune(EvalTestModels.ToolkitCheckpoint(preset, dir), Path.Combine(dir, "resnet.onnx"), dir,
                                                             steps: 8, batch: 16, new() { Path = csv }));
        TestContext.WriteLine($"logits {result.Verify!.Logits}; embedding {result.Verify!.Embedding}");
        Assert.IsTrue(result.Verify!.Passed, $"{result.Verify!.Logits} / {result.Verify!.Embedding}");

        using var classifier = ImageClassifier.Load(result.OnnxPath);
        Assert.AreEqual(512, classifier.Metadata.EmbeddingDim);
        AssertProbabilitiesMatchTorch(classifier, result.Checkpoint, FashionTestImages(dir, 6), ["boots", "handbag", "trousers"]);
    }

    /// <summary>The issue's command (<c>finetune --epochs 1 --limit N</c>) on the quickstart preset (<c>cls+mean@last4</c>, 1024-d).</summary>
    [TestMethod]
    public void TheQuickstartPresetFineTunesFromTheCommandLine()
    {
        TestData.RequireFashionMnist();
        string dir = TestData.NewFolder("ft-quick-");
        var preset = PresetCatalog.Get("vit-tiny-fmnist-quick");
        string onnx = Path.Combine(dir, "quick.onnx");
        var (code, output, error) = EvalTestModels.Mocov3("finetune", "--checkpoint", EvalTestModels.ToolkitCheckpoint(preset, dir), "--out", onnx,
            "--epochs", "1", "--limit", "96", "--test-limit", "32", "--batch", "32", "--lr", "0.03", "--mixup", "0", "--cutmix", "0", "--smoothing", "0", "--threads", "1");
        TestContext.WriteLine(output + error);
        Assert.AreEqual(0, code, error);
        StringAssert.Contains(output, "step 3/3");
        StringAssert.Contains(output, "verify: passed");

        using var classifier = ImageClassifier.Load(onnx);
        Assert.AreEqual("cls+mean@last4", classifier.Metadata.Embedding);
        Assert.AreEqual(1024, classifier.Metadata.EmbeddingDim);
        AssertProbabilitiesMatchTorch(classifier, Path.Combine(dir, "quick.run", ClassifierCheckpoint.DefaultName), FashionTestImages(dir, 6), FashionNames);
    }

    [TestMethod]
    [DataRow("vit")]
    [DataRow("resnet")]
    public void LinclsExportsAVerifiedClassifierWithTheClassNames(string arch)
    {
        TestData.RequireFashionMnist();
        string dir = TestData.NewFolder("lincls-onnx-");
        // The preset's own linear-eval lr (recorded in the pretraining checkpoint) replaces the official 3 / 0.1; the micro
        // ResNet's features are small, so it takes a large one to give logits of a few units after one epoch.
        var preset = arch == "vit"
            ? EvalTestModels.MicroVit28.WithEmbedding("cls+mean@last2").WithLincls(lincls => lincls with { BaseLr = 2 })
            : EvalTestModels.MicroResNet28.WithLincls(lincls => lincls with { BaseLr = 30 });
        var result = new LinearEvaluator().Run(new LinclsOptions
        {
            Weights = new() { Checkpoint = EvalTestModels.ToolkitCheckpoint(preset, dir, seed: 2) },
            OutputDir = Path.Combine(dir, "run"),
            OnnxPath = Path.Combine(dir, "lincls.onnx"),
            Epochs = 1,
            Batch = 64,
            Seed = 1,
            Data = new() { Limit = 128, TestLimit = 32 },
            Compute = new() { Threads = 1 },
        });
        Assert.AreEqual(preset.Lincls.BaseLr!.Value * 64 / 256, result.History[0].Lr, 1e-12);
        Assert.IsNotNull(result.Verify);
        TestContext.WriteLine($"logits {result.Verify.Logits}; embedding {result.Verify.Embedding}");
        Assert.IsTrue(result.Verify.Passed, $"{result.Verify.Logits} / {result.Verify.Embedding}");
        string onnx = Path.Combine(dir, "lincls.onnx");
        Assert.AreEqual(onnx, result.OnnxPath);

        using var classifier = ImageClassifier.Load(onnx);
        Assert.AreEqual(arch == "vit" ? 128 : 512, classifier.Metadata.EmbeddingDim);
        // The linear-evaluation head reads the embedding the probe reads: all 128 values for cls+mean@last2, not the
        // 32-d class token (the ONNX graph's logits take the same input, checked by the probabilities below).
        var savedPreset = PresetCatalog.Load(Path.Combine(Path.GetDirectoryName(result.Checkpoint)!, ClassifierCheckpoint.PresetName));
        using (var saved = CheckpointImporter.Load(result.Checkpoint, null, savedPreset))
            Assert.AreEqual(arch == "vit" ? 128L : 512L, saved.Head!.Weight.shape[1]);
        AssertProbabilitiesMatchTorch(classifier, result.Checkpoint, FashionTestImages(dir, 6), FashionNames);
    }

    /// <summary><c>mocov3 lincls --onnx</c> on an image folder (train/ and test/): the ONNX classifier names the folders.</summary>
    [TestMethod]
    public void LinclsFromTheCommandLineExportsTheImageFolderNames()
    {
        TestData.RequireFashionMnist();
        string dir = TestData.NewFolder("lincls-folder-");
        var folders = new Dictionary<int, string> { [0] = "t-shirt", [5] = "sandal", [7] = "sneaker", [8] = "bag" };
        string data = Path.Combine(dir, "data");
        WriteImageFolder(Path.Combine(data, "train"), folders, perClass: 16, train: true);
        WriteImageFolder(Path.Combine(data, "test"), folders, perClass: 4, train: false);
        var preset = PresetCatalog.Get("vit-tiny-fmnist-quick");
        string onnx = Path.Combine(dir, "lincls.onnx"), run = Path.Combine(dir, "run");
        var (code, output, error) = EvalTestModels.Mocov3("lincls", "--checkpoint", EvalTestModels.ToolkitCheckpoint(preset, dir), "--data", data,
            "--out", run, "--onnx", onnx, "--epochs", "1", "--batch", "32", "--threads", "1");
        TestContext.WriteLine(output + error);
        Assert.AreEqual(0, code, error);
        StringAssert.Contains(output, "verify: passed");
        StringAssert.Contains(output, $"wrote {onnx}");

        using var classifier = ImageClassifier.Load(onnx);
        Assert.AreEqual(1024, classifier.Metadata.EmbeddingDim);
        string[] images = Directory.GetFiles(Path.Combine(data, "test"), "*.png", SearchOption.AllDirectories).Order(StringComparer.Ordinal).ToArray();
        AssertProbabilitiesMatchTorch(classifier, Path.Combine(run, ClassifierCheckpoint.DefaultName), images, ["bag", "sandal", "sneaker", "t-shirt"]);

        // --onnx must name an .onnx file: refused before any training, naming the path.
        (code, _, error) = EvalTestModels.Mocov3("lincls", "--checkpoint", EvalTestModels.ToolkitCheckpoint(preset, dir), "--data", data,
            "--out", run, "--onnx", Path.Combine(dir, "lincls.pth"), "--epochs", "1");
        Assert.AreEqual(2, code);
        StringAssert.Contains(error, Path.Combine(dir, "lincls.pth"));
    }

    /// <summary><c>export --head --verify</c>'s logits check: the head on the class token, failing for another head.</summary>
    [TestMethod]
    public void VerifyLogitsComparesTheHeadOnTheClassTokenAndCatchesAnotherHead()
    {
        var preset = TestPresets.MicroVit.WithEmbedding("cls+mean@last2") with { Name = "micro-vit-logits" };
        string dir = TestData.NewFolder("verify-logits-");
        using var backbone = Tests.Export.ExportTestModels.Build(preset);
        manual_seed(3);
        using var weight = randn(5, 32);
        using var bias = randn(5);
        var head = LinearHead.FromTensors(weight, bias);
        string onnx = Path.Combine(dir, "head.onnx");
        OnnxExporter.ExportToFile(backbone, preset, new ExportOptions { Head = head }, onnx);
        using var pixels = TorchReference.RandomPixels(4, 1, 16, seed: 1);

        var same = OnnxVerifier.VerifyLogits(onnx, backbone, head, preset, pixels);
        TestContext.WriteLine($"same head: {same}");
        Assert.IsTrue(same.Passed && same.MaxAbsDiff <= 1e-5, same.ToString());
        Assert.IsTrue(same.ReferenceMaxAbs > 1, $"logits of scale {same.ReferenceMaxAbs}: too small to tell heads apart");

        using var otherWeight = weight + 0.01;
        var other = OnnxVerifier.VerifyLogits(onnx, backbone, LinearHead.FromTensors(otherWeight, bias), preset, pixels);
        TestContext.WriteLine($"other head: {other}");
        Assert.IsFalse(other.Passed, other.ToString());

        var encoder = Path.Combine(dir, "encoder.onnx");
        OnnxExporter.ExportToFile(backbone, preset, new ExportOptions(), encoder);
        var e = Assert.ThrowsExactly<InvalidDataException>(() => OnnxVerifier.VerifyLogits(encoder, backbone, head, preset, pixels));
        StringAssert.StartsWith(e.Message, $"{encoder}: the model has no 'logits' output");
    }

    /// <summary>
    /// The ONNX classifier's class names are <paramref name="names"/>, and its probabilities for each image file equal the
    /// softmax of the logits of the run's checkpoint (re-imported with its preset.json) in TorchSharp, to 1e-4.
    /// </summary>
    private void AssertProbabilitiesMatchTorch(ImageClassifier classifier, string checkpoint, IReadOnlyList<string> images, string[] names)
    {
        CollectionAssert.AreEqual(names, classifier.Classes.ToArray());
        var preset = PresetCatalog.Load(Path.Combine(Path.GetDirectoryName(checkpoint)!, ClassifierCheckpoint.PresetName));
        using var imported = CheckpointImporter.Load(checkpoint, null, preset);
        var backbone = imported.Backbone;
        backbone.eval();
        var head = imported.Head ?? throw new AssertFailedException($"{checkpoint} holds no head");
        Assert.AreEqual(names.Length, head.Classes);

        var batched = classifier.Classify(images, topK: names.Length);
        double maxDiff = 0, logitRange = 0;
        var top1 = new HashSet<string>();
        for (int i = 0; i < images.Count; i++)
        {
            var pixels = new byte[preset.Input.Channels * preset.Input.ImageSize * preset.Input.ImageSize];
            ImageDecoder.Decode(images[i], preset.Input.ImageSize, preset.Input.Channels, pixels);
            double[] expected;
            using (var scope = NewDisposeScope())
            using (no_grad())
            {
                var x = tensor(pixels, [1, preset.Input.Channels, preset.Input.ImageSize, preset.Input.ImageSize]).to_type(ScalarType.Float32) / 255.0;
                var shape = new long[] { 1, preset.Input.Channels, 1, 1 };
                x = (x - tensor(preset.Input.Mean.Select(v => (float)v).ToArray(), shape)) / tensor(preset.Input.Std.Select(v => (float)v).ToArray(), shape);
                // The head reads the class token, or the embedding when it is that wide (lincls on a wider embedding).
                var logits = nn.functional.linear(backbone.HeadInput(x, head.Weight.shape[1]), head.Weight, head.Bias);
                logitRange = Math.Max(logitRange, (logits.max() - logits.min()).item<float>());
                expected = logits.to_type(ScalarType.Float64).softmax(1).data<double>().ToArray();
            }
            float[] probabilities = classifier.Probabilities(images[i]);
            Assert.AreEqual(names.Length, probabilities.Length);
            for (int c = 0; c < names.Length; c++)
            {
                maxDiff = Math.Max(maxDiff, Math.Abs(probabilities[c] - expected[c]));
                // The batched path gives the same numbers under the class's name.
                var (_, p) = batched[i].Single(t => t.Label == names[c]);
                Assert.AreEqual(expected[c], p, 1e-4, $"{images[i]}, class {names[c]} (batched)");
            }
            top1.Add(batched[i][0].Label);
        }
        TestContext.WriteLine(FormattableString.Invariant(
            $"{classifier.Path}: {images.Count} images, max |p_onnx - softmax(torch)| = {maxDiff:G3}, largest logit range {logitRange:G3}, top-1 labels {string.Join(", ", top1)}"));
        Assert.IsTrue(maxDiff <= 1e-4, FormattableString.Invariant($"ONNX probabilities differ from TorchSharp's by {maxDiff:G3}"));
        // Near-equal logits would give near-uniform probabilities that any small logits match: the head must have learnt.
        Assert.IsTrue(logitRange > 1, FormattableString.Invariant($"the logits span only {logitRange:G3}: the comparison would prove little"));
    }

    /// <summary>The first <paramref name="count"/> Fashion-MNIST test images as grayscale PNG files.</summary>
    private static string[] FashionTestImages(string dir, int count)
    {
        var test = FashionMnist.Load(null, train: false, limit: count);
        return Enumerable.Range(0, count).Select(i => WritePng(Path.Combine(dir, "images", $"test{i}.png"), test, i)).ToArray();
    }

    /// <summary>Fashion-MNIST images of the classes in <paramref name="names"/>, in sub-folders named by them.</summary>
    private static void WriteImageFolder(string root, IReadOnlyDictionary<int, string> names, int perClass, bool train)
    {
        var data = FashionMnist.Load(null, train, limit: 2000);
        foreach (var (label, index) in Pick(data, names.Keys, perClass))
            WritePng(Path.Combine(root, names[label], index.ToString("D5", CultureInfo.InvariantCulture) + ".png"), data, index);
    }

    /// <summary>A <c>path,label</c> manifest of Fashion-MNIST training images of the classes in <paramref name="labels"/>.</summary>
    private static string WriteCsvManifest(string folder, IReadOnlyDictionary<int, string> labels, int perClass)
    {
        var lines = new List<string> { "path,label" };
        var train = FashionMnist.Load(null, train: true, limit: 2000);
        foreach (var (label, index) in Pick(train, labels.Keys, perClass))
        {
            string name = $"img{index:D5}.png";
            WritePng(Path.Combine(folder, name), train, index);
            lines.Add($"{name},{labels[label]}");
        }
        string csv = Path.Combine(folder, "manifest.csv");
        File.WriteAllLines(csv, lines);
        return csv;
    }

    /// <summary>The indices of the first <paramref name="perClass"/> images of each wanted class of <paramref name="data"/>.</summary>
    private static List<(int Label, int Index)> Pick(IImageDataset data, IEnumerable<int> wanted, int perClass)
    {
        var want = wanted.ToHashSet();
        var labels = new long[data.Count];
        data.ReadBatch(Enumerable.Range(0, data.Count).ToArray(), new byte[data.Count * 28 * 28], labels);
        return Enumerable.Range(0, data.Count).Where(i => want.Contains((int)labels[i]))
            .GroupBy(i => (int)labels[i]).SelectMany(g => g.Take(perClass).Select(i => (g.Key, i))).ToList();
    }

    private static string WritePng(string path, IImageDataset data, int index)
    {
        var pixels = new byte[28 * 28];
        data.ReadBatch([index], pixels, new long[1]);
        using var bitmap = new SKBitmap(new SKImageInfo(28, 28, SKColorType.Gray8, SKAlphaType.Opaque));
        pixels.CopyTo(bitmap.GetPixelSpan());
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        using var encoded = bitmap.Encode(SKEncodedImageFormat.Png, 100);
        File.WriteAllBytes(path, encoded.ToArray());
        return path;
    }
}
