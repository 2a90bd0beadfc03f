using MoCoV3.Export;
using MoCoV3.Inference;
using MoCoV3.Models;
using MoCoV3.Tests.Data;
using MoCoV3.Tests.Export;
using SkiaSharp;
using static TorchSharp.torch;

namespace MoCoV3.Tests.Inference;

/// <summary><see cref="ImageClassifier"/>: probabilities of the exported head, with the class names the model carries.</summary>
[TestClass]
public sealed class ImageClassifierTests
{
    private static ModelPreset Preset => TestPresets.MicroVit.WithEmbedding("cls+mean") with { Name = "micro-vit-classifier" };

    private static readonly string[] Names = ["T-shirt/top", "Trouser", "Pullover", "Ankle boot"];

    private static (string Dir, string Model, string[] Images, float[][] Logits) Export(bool withNames)
    {
        var preset = Preset;
        string dir = TestData.NewFolder("classifier-");
        using var backbone = ExportTestModels.Build(preset);
        manual_seed(5);
        using var weight = randn(Names.Length, 32) * 0.5; // the head reads the last class token (the first 32 values of the embedding)
        using var bias = randn(Names.Length) * 0.1;
        var head = LinearHead.FromTensors(weight, bias);
        string model = Path.Combine(dir, "classifier.onnx");
        OnnxExporter.ExportToFile(backbone, preset, new ExportOptions { Head = head, ClassNames = withNames ? Names : null }, model);

        var images = Enumerable.Range(0, 6)
            .Select(i => TestFiles.WritePhotoLike(Path.Combine(dir, $"img{i}.png"), 20 + 7 * i, 30 - 2 * i, seed: i, SKEncodedImageFormat.Png))
            .ToArray();
        var logits = images.Select(image =>
        {
            var pixels = new byte[16 * 16];
            ImageDecoder.Decode(image, 16, 1, pixels);
            using var scope = NewDisposeScope();
            using var noGrad = no_grad();
            var x = (tensor(pixels, [1, 1, 16, 16]).to_type(ScalarType.Float32) / 255.0 - preset.Input.Mean[0]) / preset.Input.Std[0];
            return nn.functional.linear(backbone.forward(x), weight, bias).data<float>().ToArray();
        }).ToArray();
        return (dir, model, images, logits);
    }

    [TestMethod]
    public void ClassifyGivesTheHeadsProbabilitiesWithTheStoredClassNames()
    {
        var (_, model, images, logits) = Export(withNames: true);
        using var classifier = ImageClassifier.Load(model);
        CollectionAssert.AreEqual(Names, classifier.Classes.ToArray());
        var batched = classifier.Classify(images, topK: 4);
        for (int i = 0; i < images.Length; i++)
        {
            var expected = Softmax(logits[i]);
            var top = classifier.Classify(images[i], topK: 3);
            Assert.AreEqual(3, top.Count);
            var order = Enumerable.Range(0, Names.Length).OrderByDescending(c => expected[c]).ToArray();
            for (int k = 0; k < 3; k++)
            {
                Assert.AreEqual(Names[order[k]], top[k].Label, $"image {i}, rank {k}");
                Assert.AreEqual(expected[order[k]], top[k].Probability, 1e-4, $"image {i}, rank {k}");
            }
            Assert.AreEqual(1.0, batched[i].Sum(p => p.Probability), 1e-5);
            Assert.AreEqual(top[0].Label, batched[i][0].Label);
            var probabilities = classifier.Probabilities(images[i]);
            for (int c = 0; c < Names.Length; c++) Assert.AreEqual(expected[c], probabilities[c], 1e-4);
        }
        // The images are told apart: not every one gets the same class distribution.
        Assert.IsTrue(batched.Select(b => b[0].Probability).Distinct().Count() > 1);
    }

    [TestMethod]
    public void WithoutStoredNamesTheClassesAreTheirIndices()
    {
        var (_, model, images, _) = Export(withNames: false);
        using var classifier = ImageClassifier.Load(model);
        CollectionAssert.AreEqual(new[] { "0", "1", "2", "3" }, classifier.Classes.ToArray());
        Assert.IsTrue(int.Parse(classifier.Classify(images[0], topK: 1)[0].Label) is >= 0 and < 4);
    }

    [TestMethod]
    public void AnEncoderWithoutAHeadIsNotAClassifier()
    {
        string dir = TestData.NewFolder("classifier-");
        using var backbone = ExportTestModels.Build(Preset);
        string model = Path.Combine(dir, "encoder.onnx");
        OnnxExporter.ExportToFile(backbone, Preset, new ExportOptions(), model);
        var e = Assert.ThrowsExactly<InvalidDataException>(() => ImageClassifier.Load(model));
        StringAssert.StartsWith(e.Message, $"{model}: no output named 'logits'");
        // Class names without a head, or of the wrong count, are refused at export.
        Assert.ThrowsExactly<ArgumentException>(() => OnnxExporter.ExportToFile(backbone, Preset, new ExportOptions { ClassNames = Names }, model));
    }

    private static float[] Softmax(float[] logits)
    {
        double max = logits.Max();
        var e = logits.Select(l => Math.Exp(l - max)).ToArray();
        double sum = e.Sum();
        return e.Select(v => (float)(v / sum)).ToArray();
    }
}
