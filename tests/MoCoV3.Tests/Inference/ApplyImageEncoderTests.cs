using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms.Image;
using MoCoV3.Export;
using MoCoV3.Inference;
using MoCoV3.Inference.ML;
using MoCoV3.Models;
using MoCoV3.Tests.Data;
using MoCoV3.Tests.Export;
using SkiaSharp;

namespace MoCoV3.Tests.Inference;

/// <summary><c>ApplyImageEncoder</c>: the ML.NET transform, its batched cursor, its row mapper, and its saved form.</summary>
[TestClass]
public sealed class ApplyImageEncoderTests
{
    private static ModelPreset Preset => TestPresets.MicroVit
        .WithEmbedding("cls+mean")
        .WithInput(input => input with { ImageSize = 20, Channels = 3, Mean = [0.5, 0.4, 0.3], Std = [0.2, 0.25, 0.3] }) with
    {
        Name = "micro-vit-rgb",
    };

    public sealed class ImageRow
    {
        public string ImagePath { get; set; } = "";
        public string Label { get; set; } = "";
    }

    public sealed class Prediction
    {
        public string PredictedLabel { get; set; } = "";
        public float[] Score { get; set; } = [];
    }

    internal static (string Dir, string Model, ImageRow[] Rows) Setup(int count = 24)
    {
        string dir = TestData.NewFolder("apply-encoder-");
        using var backbone = ExportTestModels.Build(Preset);
        string model = Path.Combine(dir, "encoder.onnx");
        OnnxExporter.ExportToFile(backbone, Preset, new ExportOptions(), model);
        // Two classes the encoder can tell apart: photo-like images in warm or cold tones.
        var rows = Enumerable.Range(0, count).Select(i =>
        {
            string label = i % 2 == 0 ? "warm" : "cold";
            string path = Path.Combine(dir, "images", label, $"{i}.png");
            TestFiles.WritePhotoLike(path, 24 + i % 5 * 6, 20 + i % 3 * 7, seed: i, SKEncodedImageFormat.Png);
            if (label == "warm") Tint(path, 1.0f, 0.5f, 0.3f); else Tint(path, 0.3f, 0.6f, 1.0f);
            return new ImageRow { ImagePath = path, Label = label };
        }).ToArray();
        return (dir, model, rows);
    }

    private static void Tint(string path, float r, float g, float b)
    {
        using var bitmap = SKBitmap.Decode(path);
        var pixels = bitmap.GetPixelSpan().ToArray();
        for (int i = 0; i < pixels.Length; i += 4)
        {
            pixels[i] = (byte)(pixels[i] * r);
            pixels[i + 1] = (byte)(pixels[i + 1] * g);
            pixels[i + 2] = (byte)(pixels[i + 2] * b);
        }
        pixels.CopyTo(bitmap.GetPixelSpan());
        using var data = bitmap.Encode(SKEncodedImageFormat.Png, 100);
        File.WriteAllBytes(path, data.ToArray());
    }

    private static float[][] Column(IDataView view, string name)
    {
        var result = new List<float[]>();
        var column = view.Schema[name];
        using var cursor = view.GetRowCursor([column]);
        var getter = cursor.GetGetter<VBuffer<float>>(column);
        VBuffer<float> value = default;
        while (cursor.MoveNext())
        {
            getter(ref value);
            result.Add(value.DenseValues().ToArray());
        }
        return result.ToArray();
    }

    [TestMethod]
    public void TheFeaturesColumnHoldsTheEncodersEmbeddingsInRowOrder()
    {
        var (_, model, rows) = Setup(count: 11);
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(rows);
        using var transformer = ml.Transforms.ApplyImageEncoder(model, "Features", "ImagePath", new ImageModelOptions { MaxBatch = 4 }).Fit(data);
        var transformed = transformer.Transform(data);
        Assert.AreEqual(new VectorDataViewType(NumberDataViewType.Single, 64), transformed.Schema["Features"].Type);

        using var encoder = ImageEncoder.Load(model);
        var expected = encoder.Embed(rows.Select(r => r.ImagePath));
        var features = Column(transformed, "Features"); // batches of 4, 4 and 3
        Assert.AreEqual(rows.Length, features.Length);
        for (int i = 0; i < rows.Length; i++) CollectionAssert.AreEqual(expected[i], features[i], $"row {i}");

        // Other columns pass through beside it, row for row.
        var labels = ml.Data.CreateEnumerable<ImageRow>(transformed, reuseRowObject: false).Select(r => r.Label).ToArray();
        CollectionAssert.AreEqual(rows.Select(r => r.Label).ToArray(), labels);
    }

    [TestMethod]
    public void APipelineSavedAndReloadedPredictsWhatItPredictedBefore()
    {
        var (dir, model, rows) = Setup();
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(rows);
        var pipeline = ml.Transforms.ApplyImageEncoder(model, "Features", "ImagePath")
            .Append(ml.Transforms.Conversion.MapValueToKey("Label"))
            .Append(ml.MulticlassClassification.Trainers.LbfgsMaximumEntropy())
            .Append(ml.Transforms.Conversion.MapKeyToValue("PredictedLabel"));
        var fitted = pipeline.Fit(data);
        string zip = Path.Combine(dir, "model.zip");
        ml.Model.Save(fitted, data.Schema, zip);
        File.Delete(model); // the encoder travels inside the zip

        var before = ml.Data.CreateEnumerable<Prediction>(fitted.Transform(data), reuseRowObject: false).ToArray();
        var engineBefore = ml.Model.CreatePredictionEngine<ImageRow, Prediction>(fitted);

        var fresh = new MLContext(seed: 2);
        var reloaded = fresh.Model.Load(zip, out var schema);
        Assert.AreEqual(TextDataViewType.Instance, schema["ImagePath"].Type);
        var after = fresh.Data.CreateEnumerable<Prediction>(reloaded.Transform(fresh.Data.LoadFromEnumerable(rows)), reuseRowObject: false).ToArray();
        var engineAfter = fresh.Model.CreatePredictionEngine<ImageRow, Prediction>(reloaded);

        Assert.AreEqual(rows.Length, after.Length);
        for (int i = 0; i < rows.Length; i++)
        {
            Assert.AreEqual(before[i].PredictedLabel, after[i].PredictedLabel, $"row {i}");
            // The fitted transformer runs the encoder on batches, the reloaded one image at a time: ONNX Runtime's kernels
            // may round the last bit differently for other batch sizes, so batched scores agree to float precision.
            for (int c = 0; c < before[i].Score.Length; c++) Assert.AreEqual(before[i].Score[c], after[i].Score[c], 1e-6, $"row {i}, class {c}");
            var single = engineBefore.Predict(rows[i]);
            var singleAfter = engineAfter.Predict(rows[i]);
            Assert.AreEqual(before[i].PredictedLabel, single.PredictedLabel);
            Assert.AreEqual(single.PredictedLabel, singleAfter.PredictedLabel, $"row {i} (prediction engines)");
            for (int c = 0; c < single.Score.Length; c++) Assert.AreEqual(single.Score[c], singleAfter.Score[c], 1e-6, $"row {i}, class {c} (prediction engines)");
            for (int c = 0; c < single.Score.Length; c++) Assert.AreEqual(before[i].Score[c], single.Score[c], 1e-5, $"row {i}: batched vs one row");
        }
        // A new process (nothing of this one's state) predicts what this process's reloaded model predicts, bit for bit.
        var lines = PredictHost.Predict(zip, rows.Select(r => r.ImagePath));
        Assert.AreEqual(rows.Length, lines.Count);
        for (int i = 0; i < rows.Length; i++)
        {
            Assert.AreEqual(rows[i].ImagePath, lines[i].Path);
            Assert.AreEqual(before[i].PredictedLabel, lines[i].Label, $"row {i} (new process)");
            CollectionAssert.AreEqual(engineAfter.Predict(rows[i]).Score, lines[i].Scores, $"row {i} (new process)");
        }
        // The classifier learned the two tones, so the predictions compared above are not constant.
        Assert.IsTrue(before.Count(p => p.PredictedLabel == "warm") is > 0 and < 24);
    }

    public sealed class BytesRow
    {
        public byte[] Image { get; set; } = [];
    }

    [TestMethod]
    public void MLImageAndEncodedBytesColumnsGiveWhatThePathsGiveAndSurviveSaveAndReload()
    {
        var (dir, model, rows) = Setup(count: 7);
        var ml = new MLContext(seed: 1);
        using var encoder = ImageEncoder.Load(model);
        var expected = encoder.Embed(rows.Select(r => r.ImagePath));

        // ML.NET's own image column: LoadImages makes MLImage values (Bgra32), read through MLImage.GetBGRPixels.
        var paths = ml.Data.LoadFromEnumerable(rows);
        var images = ml.Transforms.LoadImages("Image", imageFolder: null, inputColumnName: "ImagePath").Fit(paths).Transform(paths);
        Assert.IsInstanceOfType<ImageDataViewType>(images.Schema["Image"].Type);
        var fromImages = ml.Transforms.ApplyImageEncoder(model, "Features", "Image", new ImageModelOptions { MaxBatch = 3 }).Fit(images);
        var imageFeatures = Column(fromImages.Transform(images), "Features");

        var bytes = ml.Data.LoadFromEnumerable(rows.Select(r => new BytesRow { Image = File.ReadAllBytes(r.ImagePath) }));
        var fromBytes = ml.Transforms.ApplyImageEncoder(model, "Features", "Image").Fit(bytes);
        var bytesFeatures = Column(fromBytes.Transform(bytes), "Features");
        for (int i = 0; i < rows.Length; i++)
        {
            // The same pixels, resized and cropped by the same code: the same embedding.
            CollectionAssert.AreEqual(expected[i], imageFeatures[i], $"row {i} (MLImage)");
            CollectionAssert.AreEqual(expected[i], bytesFeatures[i], $"row {i} (bytes)");
        }

        // Saved and reloaded (in this process, from the zip alone): one image per run, same embeddings to float precision.
        File.Copy(model, Path.Combine(dir, "kept.onnx"));
        string imageZip = Path.Combine(dir, "mlimage.zip"), bytesZip = Path.Combine(dir, "bytes.zip");
        ml.Model.Save(fromImages, images.Schema, imageZip);
        ml.Model.Save(fromBytes, bytes.Schema, bytesZip);
        File.Delete(model);
        var fresh = new MLContext(seed: 2);
        var imagesAfter = Column(fresh.Model.Load(imageZip, out var imageSchema).Transform(images), "Features");
        var bytesAfter = Column(fresh.Model.Load(bytesZip, out var bytesSchema).Transform(bytes), "Features");
        // ML.NET saves no image column in a model's input schema (it cannot serialise the type): only the path column remains.
        Assert.IsNull(imageSchema.GetColumnOrNull("Image"));
        Assert.AreEqual(TextDataViewType.Instance, imageSchema["ImagePath"].Type);
        Assert.AreEqual(new VectorDataViewType(NumberDataViewType.Byte), bytesSchema["Image"].Type);
        for (int i = 0; i < rows.Length; i++)
        {
            for (int j = 0; j < expected[i].Length; j++)
            {
                Assert.AreEqual(expected[i][j], imagesAfter[i][j], 1e-5, $"row {i}, value {j} (MLImage, reloaded)");
                Assert.AreEqual(expected[i][j], bytesAfter[i][j], 1e-5, $"row {i}, value {j} (bytes, reloaded)");
            }
        }
    }
}
