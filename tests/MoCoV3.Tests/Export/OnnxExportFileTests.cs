using MoCoV3.Inference;
using System.Globalization;
using System.Text.Json;
using MoCoV3.Export;
using MoCoV3.Method;
using MoCoV3.Models;
using Onnx;
using static TorchSharp.torch;

namespace MoCoV3.Tests.Export;

/// <summary>Saved files: metadata, only the query backbone, atomic writes, external data.</summary>
[TestClass]
public sealed class OnnxExportFileTests
{
    private static ModelPreset MicroVit => TestPresets.MicroVit;

    [TestMethod]
    public void Metadata_DescribesInputEmbeddingAndRecipe()
    {
        using var backbone = ExportTestModels.Build(MicroVit);
        string dir = ExportTestModels.TempFolder();
        string path = Path.Combine(dir, "model.onnx");
        var model = OnnxExporter.ExportToFile(backbone, MicroVit, new ExportOptions { ExtraMetadata = new Dictionary<string, string> { ["source"] = "test" } }, path);
        Assert.AreEqual("MoCoV3.NET", model.ProducerName);

        using var runner = new OnnxModelRunner(path);
        var meta = runner.Metadata;
        Assert.AreEqual("vit", meta[OnnxMetadata.Arch]);
        Assert.AreEqual("16", meta[OnnxMetadata.InputSize]);
        Assert.AreEqual("1", meta[OnnxMetadata.Channels]);
        Assert.AreEqual("32", meta[OnnxMetadata.EmbeddingDim]);
        Assert.AreEqual(MicroVit.Input.Mean[0], double.Parse(meta[OnnxMetadata.Mean], CultureInfo.InvariantCulture));
        Assert.AreEqual(MicroVit.Input.Std[0], double.Parse(meta[OnnxMetadata.Std], CultureInfo.InvariantCulture));
        Assert.AreEqual("fp32", meta[OnnxMetadata.Precision]);
        Assert.AreEqual("test", meta["source"]);
        StringAssert.StartsWith(meta[OnnxMetadata.Recipe], "MoCo v3, τ=0.2, optimizer adamw");
        var preset = JsonSerializer.Deserialize<ModelPreset>(meta[OnnxMetadata.Preset], ModelPreset.Json)!;
        Assert.AreEqual(MicroVit.Name, preset.Name);
        Assert.AreEqual(MicroVit.Vit.EmbedDim, preset.Vit.EmbedDim);
        CollectionAssert.AreEqual(new[] { OnnxMetadata.EmbeddingName }, runner.OutputNames.ToArray());
        Assert.ThrowsExactly<ArgumentException>(() => OnnxExporter.Export(backbone, MicroVit,
            new ExportOptions { ExtraMetadata = new Dictionary<string, string> { [OnnxMetadata.Arch] = "x" } }));
    }

    [TestMethod]
    public void OnlyTheQueryBackbone_IsExported_NotTheMomentumEncoder()
    {
        manual_seed(11);
        using var moco = new MoCo(MicroVit, BackboneFactory.Create);
        var query = moco.BaseEncoder.Backbone;
        var momentum = moco.MomentumEncoder.Backbone;
        ExportTestModels.Perturb(query, MicroVit);
        query.eval();
        using (no_grad())
            foreach (var p in momentum.parameters()) p.add_(1.0); // the two encoders now differ clearly

        var model = OnnxExporter.Export(query, MicroVit, new ExportOptions());
        Assert.AreEqual(query.parameters().Sum(p => p.numel()), ExportTestModels.WeightElements(model),
            "weights are those of one backbone: no projector, predictor or momentum encoder");
        Assert.IsFalse(model.Graph.Initializer.Any(t => t.Name.Contains("momentum", StringComparison.Ordinal)
                                                     || t.Name.Contains("projector", StringComparison.Ordinal)
                                                     || t.Name.Contains("predictor", StringComparison.Ordinal)));
        Assert.IsTrue(OnnxVerifier.Verify(model, query, MicroVit).Passed, "matches the query backbone");
        Assert.IsFalse(OnnxVerifier.Verify(model, momentum, MicroVit).Passed, "and not the momentum backbone");
    }

    [TestMethod]
    public void Save_WritesAtomically_AndTheFileLoadsBack()
    {
        using var backbone = ExportTestModels.Build(MicroVit);
        string dir = ExportTestModels.TempFolder();
        string path = Path.Combine(dir, "model.onnx");
        var model = OnnxExporter.Export(backbone, MicroVit, new ExportOptions());
        OnnxExporter.Save(model, path);
        OnnxExporter.Save(model, path); // overwrite in place
        CollectionAssert.AreEqual(new[] { "model.onnx" }, Directory.GetFiles(dir).Select(Path.GetFileName).ToArray(), "no temporary files left");
        var loaded = ModelProto.Parser.ParseFrom(File.ReadAllBytes(path));
        Assert.AreEqual(1, loaded.MetadataProps.Count(p => p.Key == OnnxMetadata.Digest), "the file carries its digest");
        OnnxDigest.Remove(loaded); // the file is the model saved plus its digest (see Integrity/OnnxDigestTests)
        Assert.AreEqual(model, loaded);
        Assert.IsTrue(OnnxVerifier.Verify(path, backbone, MicroVit).Passed);
    }

    [TestMethod]
    public void ExternalData_SideFileIsAligned_LoadsFromItsFolder_AndMatches()
    {
        using var backbone = ExportTestModels.Build(MicroVit);
        string dir = ExportTestModels.TempFolder();
        string path = Path.Combine(dir, "model.onnx");
        var options = new ExportOptions { ExternalDataThresholdBytes = 1024 };
        var inMemory = OnnxExporter.ExportToFile(backbone, MicroVit, options, path);
        Assert.IsTrue(inMemory.Graph.Initializer.All(t => t.DataLocation == TensorProto.Types.DataLocation.Default), "the model in memory is unchanged");

        string data = path + ".data";
        Assert.IsTrue(File.Exists(data), "side file written");
        var saved = ModelProto.Parser.ParseFrom(File.ReadAllBytes(path));
        Assert.IsEmpty(OnnxModelCheck.Problems(saved));
        var external = saved.Graph.Initializer.Where(t => t.DataLocation == TensorProto.Types.DataLocation.External).ToList();
        Assert.IsNotEmpty(external);
        long dataLength = new FileInfo(data).Length;
        foreach (var t in external)
        {
            var entries = t.ExternalData.ToDictionary(e => e.Key, e => e.Value);
            Assert.AreEqual("model.onnx.data", entries["location"]);
            long offset = long.Parse(entries["offset"], CultureInfo.InvariantCulture);
            long length = long.Parse(entries["length"], CultureInfo.InvariantCulture);
            Assert.AreEqual(0L, offset % 4096, $"{t.Name} offset {offset}");
            Assert.IsLessThanOrEqualTo(dataLength, offset + length);
            Assert.IsTrue(t.RawData.IsEmpty);
        }
        Assert.IsLessThan(dataLength, new FileInfo(path).Length, "weights live in the side file");

        // Loads from another working directory: the side file is found relative to the model.
        string cwd = Directory.GetCurrentDirectory();
        try
        {
            Directory.SetCurrentDirectory(Path.GetTempPath());
            var result = OnnxVerifier.Verify(path, backbone, MicroVit);
            Assert.IsTrue(result.Passed, result.ToString());
        }
        finally
        {
            Directory.SetCurrentDirectory(cwd);
        }

        // Saving the same model small again drops the stale side file.
        OnnxExporter.Save(inMemory, path);
        Assert.IsFalse(File.Exists(data));
        Assert.IsTrue(OnnxVerifier.Verify(path, backbone, MicroVit).Passed);
    }
}
