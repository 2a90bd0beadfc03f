using System.Globalization;
using System.IO.Hashing;
using System.Text.Json;
using Google.Protobuf;
using MoCoV3.Export;
using MoCoV3.Export.Quantization;
using MoCoV3.Inference;
using MoCoV3.Models;
using MoCoV3.Tests.Export;
using Onnx;

namespace MoCoV3.Tests.Integrity;

/// <summary>
/// Exported models carry <c>mocov3.digest</c> (XxHash3 of the model without it, and of each initializer); every
/// loader checks it, names the file and the changed tensor, and models without one load as before.
/// </summary>
[TestClass]
public sealed class OnnxDigestTests
{
    private static readonly ModelPreset Preset = TestPresets.MicroVit;

    private static string Exported(string name, ExportOptions? options = null)
    {
        using var backbone = ExportTestModels.Build(Preset, seed: 5);
        string path = Path.Combine(ExportTestModels.TempFolder(), name);
        OnnxExporter.ExportToFile(backbone, Preset, options ?? new ExportOptions(), path);
        return path;
    }

    private static JsonElement Digest(ModelProto model) =>
        JsonDocument.Parse(model.MetadataProps.Single(p => p.Key == OnnxMetadata.Digest).Value).RootElement;

    [TestMethod]
    public void TheDigest_IsTheXxHash3OfTheModelWithoutIt()
    {
        string path = Exported("digest.onnx");
        var model = ModelProto.Parser.ParseFrom(File.ReadAllBytes(path));
        var digest = Digest(model);
        var without = model.Clone();
        without.MetadataProps.Remove(without.MetadataProps.Single(p => p.Key == OnnxMetadata.Digest));
        Assert.AreEqual(XxHash3.HashToUInt64(without.ToByteArray()).ToString("x16", CultureInfo.InvariantCulture), digest.GetProperty("xxh3").GetString());
        var qkv = model.Graph.Initializer.Single(t => t.Name == "blocks.0.attn.qkv.weight_t");
        Assert.AreEqual(XxHash3.HashToUInt64(qkv.ToByteArray()).ToString("x16", CultureInfo.InvariantCulture),
            digest.GetProperty("initializers").GetProperty(qkv.Name).GetString());
        Assert.AreEqual(model.Graph.Initializer.Count, digest.GetProperty("initializers").EnumerateObject().Count());
        using var runner = new OnnxModelRunner(path);
        Assert.AreEqual(32, runner.Run(new float[Preset.Input.Channels * Preset.Input.ImageSize * Preset.Input.ImageSize], 1)[OnnxMetadata.EmbeddingName].Length);
    }

    [TestMethod]
    public void FlippedBytesInAnInitializer_AreRefusedNamingTheFileAndTheTensor()
    {
        string path = Exported("flipped.onnx");
        var qkv = ModelProto.Parser.ParseFrom(File.ReadAllBytes(path)).Graph.Initializer.Single(t => t.Name == "blocks.0.attn.qkv.weight_t");
        int at = CorruptBytes.Find(File.ReadAllBytes(path), qkv.RawData.Span[..64]);
        CorruptBytes.Flip(path, at + 20, 16);
        string expected = $"{path}: ONNX model is corrupt: its content hashes to XxHash3 ";
        var e = Assert.ThrowsExactly<InvalidDataException>(() => new OnnxModelRunner(path));
        StringAssert.StartsWith(e.Message, expected);
        StringAssert.Contains(e.Message, "; initializer 'blocks.0.attn.qkv.weight_t' changed (");
        e = Assert.ThrowsExactly<InvalidDataException>(() => ImageEncoder.Load(path));
        StringAssert.StartsWith(e.Message, expected);
    }

    [TestMethod]
    public void ChangedMetadata_IsRefusedAsAChangedGraph()
    {
        string path = Exported("metadata.onnx");
        var model = ModelProto.Parser.ParseFrom(File.ReadAllBytes(path));
        model.MetadataProps.Single(p => p.Key == OnnxMetadata.Mean).Value = "0.9";
        File.WriteAllBytes(path, model.ToByteArray());
        var e = Assert.ThrowsExactly<InvalidDataException>(() => new OnnxModelRunner(path));
        StringAssert.StartsWith(e.Message, $"{path}: ONNX model is corrupt: ");
        StringAssert.Contains(e.Message, "every initializer matches, so the graph or its metadata changed");
        StringAssert.Contains(e.Message, "remove the mocov3.digest entry");

        model.MetadataProps.Remove(model.MetadataProps.Single(p => p.Key == OnnxMetadata.Digest));
        File.WriteAllBytes(path, model.ToByteArray());
        using var runner = new OnnxModelRunner(path); // a model without a digest loads unchecked, as before
        Assert.AreEqual("0.9", runner.Metadata[OnnxMetadata.Mean]);
    }

    [TestMethod]
    public void FlippedBytesInExternalData_AreRefusedNamingTheTensor()
    {
        string path = Exported("external.onnx", new ExportOptions { ExternalDataThresholdBytes = 1024 });
        string data = path + ".data";
        var model = ModelProto.Parser.ParseFrom(File.ReadAllBytes(path));
        var qkv = model.Graph.Initializer.Single(t => t.Name == "blocks.0.attn.qkv.weight_t");
        Assert.AreEqual(TensorProto.Types.DataLocation.External, qkv.DataLocation);
        using (var runner = new OnnxModelRunner(path))
            Assert.AreEqual(1, runner.OutputNames.Count);
        long offset = long.Parse(qkv.ExternalData.Single(e => e.Key == "offset").Value, CultureInfo.InvariantCulture);
        CorruptBytes.Flip(data, offset + 40, 16);
        var e = Assert.ThrowsExactly<InvalidDataException>(() => new OnnxModelRunner(path));
        StringAssert.StartsWith(e.Message, $"{path}: ONNX model is corrupt: ");
        StringAssert.Contains(e.Message, "initializer 'blocks.0.attn.qkv.weight_t' changed");
    }

    [TestMethod]
    public void AQuantisedModel_CarriesItsOwnDigest()
    {
        string path = Exported("float.onnx");
        var loaded = OnnxModelFile.Read(path);
        var quantized = DynamicInt8Quantizer.Quantize(loaded).Model;
        Assert.IsFalse(quantized.MetadataProps.Any(p => p.Key == OnnxMetadata.Digest), "the float model's digest does not travel");
        using (var inMemory = new OnnxModelRunner(quantized.ToByteArray()))
            Assert.AreEqual(1, inMemory.OutputNames.Count);
        string int8 = Path.Combine(Path.GetDirectoryName(path)!, "int8.onnx");
        OnnxExporter.Save(quantized, int8);
        var saved = OnnxModelFile.Read(int8); // checks the digest
        Assert.AreNotEqual(Digest(loaded).GetProperty("xxh3").GetString(), Digest(saved).GetProperty("xxh3").GetString());
        CorruptBytes.Flip(int8, new FileInfo(int8).Length / 2, 16);
        var e = Assert.ThrowsExactly<InvalidDataException>(() => OnnxModelFile.Read(int8));
        StringAssert.StartsWith(e.Message, int8 + ": ");
    }

    [TestMethod]
    public void AMalformedDigest_IsRefused()
    {
        string path = Exported("malformed.onnx");
        var model = ModelProto.Parser.ParseFrom(File.ReadAllBytes(path));
        model.MetadataProps.Single(p => p.Key == OnnxMetadata.Digest).Value = "{\"xxh3\":\"12\"}";
        File.WriteAllBytes(path, model.ToByteArray());
        var e = Assert.ThrowsExactly<InvalidDataException>(() => new OnnxModelRunner(path));
        Assert.AreEqual($"{path}: ONNX model is corrupt: its mocov3.digest metadata is not a digest this toolkit writes ('12' is not 16 hex digits)", e.Message);
    }
}
