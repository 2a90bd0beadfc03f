using Google.Protobuf;
using MoCoV3.Export;
using MoCoV3.Inference;
using MoCoV3.Models;
using MoCoV3.Tests.Data;
using MoCoV3.Tests.Export;
using Onnx;
using SkiaSharp;
using static TorchSharp.torch;

namespace MoCoV3.Tests.Inference;

/// <summary><see cref="ImageEncoder"/>: the torch-free runner apps use, against the TorchSharp encoder it was exported from.</summary>
[TestClass]
public sealed class ImageEncoderTests
{
    /// <summary>An RGB micro ViT reading class token + mean patch token of the last two blocks (a non-trivial embedding).</summary>
    private static ModelPreset RgbVit => TestPresets.MicroVit
        .WithEmbedding("cls+mean@last2")
        .WithInput(input => input with { ImageSize = 24, Channels = 3, Mean = [0.5, 0.4, 0.3], Std = [0.2, 0.25, 0.3] }) with
    {
        Name = "micro-vit-rgb",
    };

    private static (string Dir, string Model, string[] Images) Setup(ModelPreset preset, out Backbone backbone)
    {
        string dir = TestData.NewFolder("inference-");
        backbone = ExportTestModels.Build(preset);
        string model = Path.Combine(dir, "encoder.onnx");
        OnnxExporter.ExportToFile(backbone, preset, new ExportOptions(), model);
        var images = new List<string>();
        // Photo-like images of several sizes and aspect ratios (shrunk, enlarged, cropped) in every format the decoder reads.
        var shapes = new (int W, int H, SKEncodedImageFormat Format)[]
        {
            (64, 48, SKEncodedImageFormat.Jpeg), (48, 64, SKEncodedImageFormat.Png), (24, 24, SKEncodedImageFormat.Png),
            (17, 30, SKEncodedImageFormat.Webp), (120, 90, SKEncodedImageFormat.Jpeg), (31, 19, SKEncodedImageFormat.Png),
            (200, 150, SKEncodedImageFormat.Jpeg), (40, 40, SKEncodedImageFormat.Webp), (25, 60, SKEncodedImageFormat.Png),
            (90, 33, SKEncodedImageFormat.Jpeg),
        };
        for (int i = 0; i < shapes.Length; i++)
        {
            var (w, h, format) = shapes[i];
            string ext = format switch { SKEncodedImageFormat.Jpeg => "jpg", SKEncodedImageFormat.Webp => "webp", _ => "png" };
            images.Add(TestFiles.WritePhotoLike(Path.Combine(dir, "images", $"img{i}.{ext}"), w, h, seed: 100 + i, format));
        }
        return (dir, model, images.ToArray());
    }

    /// <summary>The TorchSharp backbone on the same decoded pixels, normalised with the preset's mean and std.</summary>
    private static float[] TorchEmbedding(Backbone backbone, ModelPreset preset, string image)
    {
        var pixels = new byte[preset.Input.Channels * preset.Input.ImageSize * preset.Input.ImageSize];
        ImageDecoder.Decode(image, preset.Input.ImageSize, preset.Input.Channels, pixels);
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var shape = new long[] { 1, preset.Input.Channels, 1, 1 };
        var x = tensor(pixels, [1, preset.Input.Channels, preset.Input.ImageSize, preset.Input.ImageSize]).to_type(ScalarType.Float32) / 255.0;
        x = (x - tensor(preset.Input.Mean.Select(v => (float)v).ToArray(), shape)) / tensor(preset.Input.Std.Select(v => (float)v).ToArray(), shape);
        return backbone.Embed(x).data<float>().ToArray();
    }

    private static double MaxAbsDiff(float[] a, float[] b)
    {
        Assert.AreEqual(a.Length, b.Length);
        return a.Zip(b, (x, y) => Math.Abs((double)x - y)).Max();
    }

    [TestMethod]
    public void EmbeddingsEqualTheTorchSharpEncoderOnRealImages()
    {
        var preset = RgbVit;
        var (_, model, images) = Setup(preset, out var backbone);
        using (backbone)
        using (var encoder = ImageEncoder.Load(model))
        {
            Assert.AreEqual(2 * 2 * 32, encoder.Dimension); // (cls ++ mean) of each of the last 2 blocks, width 32
            Assert.AreEqual((24, 3), (encoder.InputSize, encoder.Channels));
            Assert.AreEqual("micro-vit-rgb", encoder.Metadata.PresetName);
            Assert.AreEqual("cls+mean@last2", encoder.Metadata.Embedding);
            Assert.IsFalse(encoder.Preprocessing.NormalizeOnHost, "the toolkit's graph normalises");

            var batched = encoder.Embed(images);
            Assert.AreEqual(images.Length, batched.Count);
            for (int i = 0; i < images.Length; i++)
            {
                float[] reference = TorchEmbedding(backbone, preset, images[i]);
                float[] single = encoder.Embed(images[i]);
                Assert.IsTrue(MaxAbsDiff(single, reference) <= 1e-4, $"{images[i]}: ONNX vs TorchSharp {MaxAbsDiff(single, reference):E2}");
                Assert.IsTrue(MaxAbsDiff(batched[i], reference) <= 1e-4, $"{images[i]} (batched): {MaxAbsDiff(batched[i], reference):E2}");
                Assert.IsTrue(reference.Any(v => Math.Abs(v) > 1e-2), "a real embedding, not zeros");
            }
            // Different images give different embeddings (the comparison above is not between constants).
            Assert.IsTrue(MaxAbsDiff(batched[0], batched[1]) > 1e-2);
        }
    }

    [TestMethod]
    public void TheResNetEncoderMatchesTorchSharpToo()
    {
        var preset = ExportTestModels.MicroResNet.WithInput(input => input with { Channels = 3, Mean = [0.485, 0.456, 0.406], Std = [0.229, 0.224, 0.225] });
        var (_, model, images) = Setup(preset, out var backbone);
        using (backbone)
        using (var encoder = ImageEncoder.Load(model, new ImageModelOptions { MaxBatch = 3 }))
        {
            Assert.AreEqual("pool", encoder.Metadata.Embedding);
            var batched = encoder.Embed(images); // batches of 3, 3, 3 and 1
            for (int i = 0; i < images.Length; i++)
            {
                float[] reference = TorchEmbedding(backbone, preset, images[i]);
                Assert.IsTrue(MaxAbsDiff(batched[i], reference) <= 1e-4, $"{images[i]}: {MaxAbsDiff(batched[i], reference):E2}");
            }
        }
    }

    [TestMethod]
    public void StreamsAndBytesGiveWhatTheFileGives()
    {
        var (_, model, images) = Setup(RgbVit, out var backbone);
        backbone.Dispose();
        using var encoder = ImageEncoder.Load(model);
        foreach (string image in images.Take(4))
        {
            float[] fromFile = encoder.Embed(image);
            using (var stream = File.OpenRead(image))
                CollectionAssert.AreEqual(fromFile, encoder.Embed(stream));
            CollectionAssert.AreEqual(fromFile, encoder.Embed(File.ReadAllBytes(image).AsSpan()));
        }
    }

    [TestMethod]
    public void ConcurrentCallsFromEightThreadsGiveTheSequentialResults()
    {
        var (_, model, images) = Setup(RgbVit, out var backbone);
        backbone.Dispose();
        using var encoder = ImageEncoder.Load(model, new ImageModelOptions { MaxBatch = 4 });
        var sequential = images.Select(encoder.Embed).ToArray();
        var sequentialBatch = encoder.Embed(images);

        var results = new float[8][][];
        var batches = new IReadOnlyList<float[]>[8];
        using var start = new Barrier(8);
        var threads = Enumerable.Range(0, 8).Select(t => new Thread(() =>
        {
            start.SignalAndWait();
            // Each thread walks the images in its own order, single and batched calls interleaved with the other threads.
            var order = Enumerable.Range(0, images.Length).Select(i => (i + t * 3) % images.Length).ToArray();
            var mine = new float[images.Length][];
            foreach (int i in order) mine[i] = encoder.Embed(images[i]);
            results[t] = mine;
            batches[t] = encoder.Embed(images);
        })).ToArray();
        foreach (var thread in threads) thread.Start();
        foreach (var thread in threads) thread.Join();

        for (int t = 0; t < 8; t++)
        {
            for (int i = 0; i < images.Length; i++)
            {
                CollectionAssert.AreEqual(sequential[i], results[t][i], $"thread {t}, image {i}");
                CollectionAssert.AreEqual(sequentialBatch[i], batches[t][i], $"thread {t}, batched image {i}");
            }
        }
    }

    [TestMethod]
    public void EmbedEachHoldsOneBatchAndGivesTheSameVectors()
    {
        var (_, model, images) = Setup(RgbVit, out var backbone);
        backbone.Dispose();
        using var encoder = ImageEncoder.Load(model, new ImageModelOptions { MaxBatch = 2 });
        var all = encoder.Embed(images);
        int enumerated = 0;
        IEnumerable<string> Paths()
        {
            foreach (var image in images)
            {
                enumerated++;
                yield return image;
            }
        }
        int i = 0;
        foreach (var v in encoder.EmbedEach(Paths()))
        {
            // Lazy: when vector i comes out, at most the rest of its batch of 2 has been read.
            Assert.IsTrue(enumerated <= (i / 2 + 1) * 2, $"read {enumerated} paths before yielding vector {i}");
            CollectionAssert.AreEqual(all[i], v);
            i++;
        }
        Assert.AreEqual(images.Length, i);
    }

    [TestMethod]
    public void AModelWithoutToolkitMetadataNeedsExplicitPreprocessing()
    {
        var preset = RgbVit;
        var (dir, model, images) = Setup(preset, out var backbone);
        backbone.Dispose();
        // The same graph without metadata_props: what an ONNX file from another exporter looks like to the loader.
        var proto = ModelProto.Parser.ParseFrom(File.ReadAllBytes(model));
        proto.MetadataProps.Clear();
        string foreign = Path.Combine(dir, "foreign.onnx");
        File.WriteAllBytes(foreign, proto.ToByteArray());

        var e = Assert.ThrowsExactly<InvalidDataException>(() => ImageEncoder.Load(foreign));
        StringAssert.StartsWith(e.Message, $"{foreign}: no MoCoV3.NET preprocessing metadata");
        StringAssert.Contains(e.Message, "mocov3.input_size");
        StringAssert.Contains(e.Message, "set InputSize, Mean, Std");

        // The graph normalises with the preset's statistics itself, so mean 0 / std 1 on the host reproduces the toolkit model.
        using var original = ImageEncoder.Load(model);
        using var explicitly = ImageEncoder.Load(foreign, new ImageModelOptions { InputSize = 24, Mean = [0, 0, 0], Std = [1, 1, 1] });
        Assert.IsTrue(explicitly.Preprocessing.NormalizeOnHost);
        foreach (var image in images.Take(3)) CollectionAssert.AreEqual(original.Embed(image), explicitly.Embed(image));

        // Host normalisation does change the input: another mean gives other embeddings.
        using var shifted = ImageEncoder.Load(foreign, new ImageModelOptions { InputSize = 24, Mean = [0.5f, 0.5f, 0.5f], Std = [1, 1, 1] });
        Assert.IsTrue(MaxAbsDiff(original.Embed(images[0]), shifted.Embed(images[0])) > 1e-3);

        var wrongSize = Assert.ThrowsExactly<InvalidDataException>(() =>
            ImageEncoder.Load(foreign, new ImageModelOptions { InputSize = 32, Mean = [0, 0, 0], Std = [1, 1, 1] }));
        StringAssert.Contains(wrongSize.Message, "does not take 3x32x32 images");
        Assert.ThrowsExactly<ArgumentException>(() => ImageEncoder.Load(model, new ImageModelOptions { InputSize = 24, Mean = [0, 0, 0], Std = [1, 1, 1] }));
    }

    [TestMethod]
    public void ACorruptImageOrModelIsNamedInTheError()
    {
        var (dir, model, images) = Setup(RgbVit, out var backbone);
        backbone.Dispose();
        using var encoder = ImageEncoder.Load(model);
        string truncated = Path.Combine(dir, "truncated.jpg");
        byte[] jpeg = File.ReadAllBytes(images[0]);
        File.WriteAllBytes(truncated, jpeg[..(jpeg.Length / 3)]);
        string text = Path.Combine(dir, "notes.png");
        File.WriteAllText(text, "not an image");

        var e = Assert.ThrowsExactly<DataFormatException>(() => encoder.Embed(truncated));
        StringAssert.StartsWith(e.Message, truncated + ": ");
        e = Assert.ThrowsExactly<DataFormatException>(() => encoder.Embed([images[1], text, images[2]]));
        StringAssert.StartsWith(e.Message, text + ": ");
        e = Assert.ThrowsExactly<DataFormatException>(() => encoder.Embed(new byte[] { 1, 2, 3 }.AsSpan(), "upload 7"));
        StringAssert.StartsWith(e.Message, "upload 7: ");
        Assert.ThrowsExactly<FileNotFoundException>(() => encoder.Embed(Path.Combine(dir, "missing.png")));

        string badModel = Path.Combine(dir, "bad.onnx");
        File.WriteAllBytes(badModel, File.ReadAllBytes(model)[..1000]);
        var m = Assert.ThrowsExactly<InvalidDataException>(() => ImageEncoder.Load(badModel));
        StringAssert.StartsWith(m.Message, badModel + ": ");
        Assert.ThrowsExactly<FileNotFoundException>(() => ImageEncoder.Load(Path.Combine(dir, "missing.onnx")));
    }

    [TestMethod]
    public void CudaWithoutTheGpuPackageIsAClearError()
    {
        var (_, model, _) = Setup(RgbVit, out var backbone);
        backbone.Dispose();
        var e = Assert.ThrowsExactly<InvalidOperationException>(() => ImageEncoder.Load(model, new ImageModelOptions { Device = "cuda" }));
        StringAssert.StartsWith(e.Message, "device 'cuda': this ONNX Runtime has no CUDAExecutionProvider");
        StringAssert.Contains(e.Message, "Microsoft.ML.OnnxRuntime.Gpu");
        Assert.ThrowsExactly<ArgumentException>(() => ImageEncoder.Load(model, new ImageModelOptions { Device = "tpu" }));
    }
}
