using MoCoV3.Inference;
using MoCoV3.Data;
using MoCoV3.Eval.Embed;
using MoCoV3.Export;
using MoCoV3.Models;
using MoCoV3.Tests.Cli;
using MoCoV3.Tests.Data;
using MoCoV3.Tests.Export;
using SkiaSharp;

namespace MoCoV3.Tests.Eval;

/// <summary><c>mocov3 embed</c>: ONNX Runtime embeddings of image folders and manifests, written as CSV.</summary>
[TestClass]
public sealed class EmbedTests
{
    /// <summary>The micro ViT on RGB images, so the folders' colour images go through all three channels.</summary>
    private static ModelPreset RgbMicroVit => TestPresets.MicroVit.WithInput(input => input with { Channels = 3, Mean = [0.5, 0.4, 0.3], Std = [0.2, 0.25, 0.3] }) with { Name = "micro-vit-rgb" };

    private static string ExportModel(string dir)
    {
        using var backbone = ExportTestModels.Build(RgbMicroVit);
        string path = Path.Combine(dir, "encoder.onnx");
        OnnxExporter.ExportToFile(backbone, RgbMicroVit, new ExportOptions(), path);
        return path;
    }

    /// <summary>Class folders <c>blue/</c> (3 images) and <c>red/</c> (2 images) of several sizes and formats.</summary>
    private static string WriteClassFolders(string root)
    {
        TestFiles.WriteSolid(Path.Combine(root, "red", "r1.png"), 20, 24, new SKColor(220, 30, 40), SKEncodedImageFormat.Png);
        TestFiles.WriteStripes(Path.Combine(root, "red", "r2.png"), 8, 16, [SKColors.Red, SKColors.White, SKColors.Black], SKEncodedImageFormat.Png);
        TestFiles.WriteSolid(Path.Combine(root, "blue", "b1.png"), 16, 16, new SKColor(10, 40, 230), SKEncodedImageFormat.Png);
        TestFiles.WriteSolid(Path.Combine(root, "blue", "b2.jpg"), 40, 30, new SKColor(60, 90, 200), SKEncodedImageFormat.Jpeg);
        TestFiles.WriteStripes(Path.Combine(root, "blue", "b3.png"), 5, 20, [SKColors.Blue, SKColors.Yellow], SKEncodedImageFormat.Png);
        return root;
    }

    [TestMethod]
    public void EmbedWritesOneRowPerImageWithTheVectorsOfTheOnnxModel()
    {
        string dir = TestData.NewFolder("embed-");
        string model = ExportModel(dir);
        string images = WriteClassFolders(Path.Combine(dir, "images"));

        using var embedder = new OnnxEmbedder(model);
        Assert.AreEqual((16, 3), (embedder.ImageSize, embedder.Channels));
        var dataset = EmbeddingInput.Open(images, embedder.ImageSize, embedder.Channels);
        Assert.IsInstanceOfType<ImageFolderDataset>(dataset);
        var embeddings = embedder.Embed(dataset, batch: 2); // batches of 2, 2 and 1
        string csv = Path.Combine(dir, "out", "embeddings.csv");
        EmbeddingCsv.Write(csv, dataset, embeddings);

        var header = File.ReadLines(csv).First().Split(',');
        CollectionAssert.AreEqual(new[] { "path", "label" }.Concat(Enumerable.Range(0, 32).Select(i => $"e{i}")).ToArray(), header);
        var (paths, labels, vectors) = EmbeddingCsv.Read(csv);
        CollectionAssert.AreEqual(dataset.Paths.ToArray(), paths);
        CollectionAssert.AreEqual(new[] { "blue", "blue", "blue", "red", "red" }, labels);
        Assert.AreEqual(5, vectors.Count);

        // The same pixels through OnnxModelRunner, all five in one batch.
        var bytes = new byte[5 * 3 * 16 * 16];
        dataset.ReadBatch([0, 1, 2, 3, 4], bytes, new long[5]);
        using var runner = new OnnxModelRunner(model);
        float[] expected = runner.Embed(bytes.Select(b => b / 255f).ToArray(), 5);
        for (int i = 0; i < 5; i++)
            for (int j = 0; j < 32; j++)
                Assert.AreEqual(expected[i * 32 + j], vectors[i][j], 1e-5, $"image {i} value {j}");
        Assert.IsTrue(vectors.Select(v => v[0]).Distinct().Count() == 5, "different images must give different embeddings");
    }

    [TestMethod]
    public void EmbedReadsFlatFoldersWithoutLabelsAndCsvManifests()
    {
        string dir = TestData.NewFolder("embed-");
        string model = ExportModel(dir);
        string flat = Path.Combine(dir, "flat");
        TestFiles.WriteSolid(Path.Combine(flat, "b.png"), 16, 16, SKColors.Green, SKEncodedImageFormat.Png);
        TestFiles.WriteSolid(Path.Combine(flat, "a.webp"), 30, 18, SKColors.Orange, SKEncodedImageFormat.Webp);
        File.WriteAllText(Path.Combine(flat, "notes.txt"), "not an image");

        using var embedder = new OnnxEmbedder(model);
        var dataset = EmbeddingInput.Open(flat, 16, 3);
        Assert.IsInstanceOfType<FlatImageFolderDataset>(dataset);
        string csv = Path.Combine(dir, "flat.csv");
        EmbeddingCsv.Write(csv, dataset, embedder.Embed(dataset));
        var (paths, labels, vectors) = EmbeddingCsv.Read(csv);
        Assert.IsNull(labels, "a flat folder has no label column");
        CollectionAssert.AreEqual(new[] { "a.webp", "b.png" }, paths.Select(Path.GetFileName).ToArray());
        Assert.AreEqual(32, vectors[0].Length);

        string manifest = Path.Combine(dir, "images.csv");
        File.WriteAllText(manifest, "path,label\nflat/b.png,plant\nflat/a.webp,fruit\n");
        var listed = EmbeddingInput.Open(manifest, 16, 3);
        string listedCsv = Path.Combine(dir, "listed.csv");
        EmbeddingCsv.Write(listedCsv, listed, embedder.Embed(listed));
        var (listedPaths, listedLabels, listedVectors) = EmbeddingCsv.Read(listedCsv);
        CollectionAssert.AreEqual(new[] { "plant", "fruit" }, listedLabels);
        CollectionAssert.AreEqual(new[] { paths[1], paths[0] }, listedPaths);
        CollectionAssert.AreEqual(vectors[1], listedVectors[0], "the same image gives the same vector from a folder and a manifest");
    }

    [TestMethod]
    public void CudaWithoutTheGpuPackageIsANamedError()
    {
        string model = ExportModel(TestData.NewFolder("embed-"));
        var e = Assert.ThrowsExactly<InvalidOperationException>(() => new OnnxEmbedder(model, "cuda"));
        StringAssert.Contains(e.Message, "CUDAExecutionProvider");
        StringAssert.Contains(e.Message, "Microsoft.ML.OnnxRuntime.Gpu 1.31.0");
        Assert.ThrowsExactly<ArgumentException>(() => new OnnxEmbedder(model, "tpu"));
    }

    [TestMethod]
    public void EmbedCommandWritesTheCsvAndNamesBadInput()
    {
        string dir = TestData.NewFolder("embed-");
        string model = ExportModel(dir);
        string images = WriteClassFolders(Path.Combine(dir, "images"));
        string csv = Path.Combine(dir, "embeddings.csv");

        var (code, output, error) = CliTests.Mocov3("embed", "--encoder", model, "--input", images, "--out", csv, "--batch", "3");
        Assert.AreEqual(0, code, error);
        StringAssert.Contains(output, "5 embeddings of 32 values");
        var lines = File.ReadAllLines(csv);
        Assert.AreEqual(6, lines.Length);
        Assert.IsTrue(lines.All(l => l.Split(',').Length == 34), "path, label and 32 values on every line");

        (code, _, error) = CliTests.Mocov3("embed", "--encoder", model, "--input", images, "--out", csv, "--device", "cuda");
        Assert.AreEqual(2, code);
        StringAssert.StartsWith(error, "error: device 'cuda'");
        StringAssert.Contains(error, "Microsoft.ML.OnnxRuntime.Gpu");

        string missing = Path.Combine(dir, "no-such-folder");
        (code, _, error) = CliTests.Mocov3("embed", "--encoder", model, "--input", missing, "--out", csv);
        Assert.AreEqual(2, code);
        StringAssert.Contains(error, missing);

        string noModel = Path.Combine(dir, "missing.onnx");
        (code, _, error) = CliTests.Mocov3("embed", "--encoder", noModel, "--input", images, "--out", csv);
        Assert.AreEqual(2, code);
        StringAssert.Contains(error, noModel);

        string empty = Path.Combine(dir, "empty");
        Directory.CreateDirectory(Path.Combine(empty, "cls"));
        (code, _, error) = CliTests.Mocov3("embed", "--encoder", model, "--input", empty, "--out", csv);
        Assert.AreEqual(2, code);
        StringAssert.Contains(error, empty);
    }
}
