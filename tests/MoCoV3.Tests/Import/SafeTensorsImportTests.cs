using System.Collections;
using System.Text.Json;
using Google.Protobuf;
using MoCoV3.Checkpoints;
using MoCoV3.Export;
using MoCoV3.Inference;
using MoCoV3.Method;
using MoCoV3.Models;
using MoCoV3.Tests.Export;
using MoCoV3.Training;
using static MoCoV3.Tests.Import.ImportTestFiles;
using static TorchSharp.torch;

namespace MoCoV3.Tests.Import;

/// <summary>
/// safetensors in and out: every supported key layout imports from a safetensors file as from a torch.save file,
/// <c>convert --to safetensors</c> writes timm/torchvision names, the preset in <c>__metadata__</c> and timm's
/// <c>config.json</c>, and exporting the converted file gives the same ONNX embeddings as exporting the original.
/// </summary>
[TestClass]
public sealed class SafeTensorsImportTests
{
    /// <summary>The state dict of a torch.save test file (under its wrapper), re-saved as safetensors with the same keys.</summary>
    internal static string AsSafeTensors(string pth, string name, ScalarType? dtype = null)
    {
        var dict = PyTorchFile.FindStateDict(PyTorchFile.Read(pth), out _);
        var tensors = dict.Cast<DictionaryEntry>().Where(e => e.Value is Tensor)
            .Select(e => KeyValuePair.Create((string)e.Key, dtype is { } d && ((Tensor)e.Value!).is_floating_point() ? ((Tensor)e.Value!).to(d) : (Tensor)e.Value!))
            .ToList();
        string path = TempFile(name);
        SafeTensorsFile.Write(path, tensors);
        return path;
    }

    private static ModelPreset PresetOf(string layout) => layout == "torchvision" ? MicroResNet : TestPresets.MicroVit;

    /// <summary>A file of the layout and the backbone it holds.</summary>
    private static (string Pth, Backbone Expected, IDisposable Owner) Source(string layout)
    {
        var preset = PresetOf(layout);
        if (layout is "official" or "mmselfsup")
        {
            var moco = SourceMoCo(preset, 71);
            return (layout == "official" ? Official(moco, vit: true) : MMSelfSup(moco), moco.BaseEncoder.Backbone, moco);
        }
        var backbone = SourceBackbone(preset, 72);
        return (Flat(backbone, layout == "timm" ? "head" : "fc", "flat.pth"), backbone, backbone);
    }

    [TestMethod]
    [DataRow("official", CheckpointFormat.Official)]
    [DataRow("mmselfsup", CheckpointFormat.MMSelfSup)]
    [DataRow("timm", CheckpointFormat.Timm)]
    [DataRow("torchvision", CheckpointFormat.Torchvision)]
    public void EveryLayoutImportsFromSafeTensors(string layout, CheckpointFormat expected)
    {
        var preset = PresetOf(layout);
        var (pth, backbone, owner) = Source(layout);
        using var _ = owner;
        string file = AsSafeTensors(pth, layout + ".safetensors");

        using var imported = CheckpointImporter.Load(file, format: null, arch: null, presets: [preset]);
        Assert.AreEqual(expected, imported.Format);
        Assert.AreEqual(CheckpointContainer.SafeTensors, imported.Report.Container);
        StringAssert.Contains(imported.Report.Lines().First(), $"{expected} checkpoint in a safetensors file");
        Assert.AreEqual(0.0, FeatureDifference(backbone, imported.Backbone, preset), "the backbone differs from the source");
        Assert.AreEqual(layout is "timm" or "torchvision", imported.Head is not null, "a classifier comes along with the flat layouts only");
    }

    [TestMethod]
    public void HalfPrecisionFilesAreWidenedToFloat32()
    {
        var preset = TestPresets.MicroVit;
        using var source = SourceBackbone(preset, 73);
        string file = AsSafeTensors(Flat(source, "head", "f.pth"), "bf16.safetensors", ScalarType.BFloat16);
        using var imported = CheckpointImporter.Load(file, null, null, [preset]);
        CollectionAssert.Contains(imported.Report.Notes.ToList(), "converted BFloat16 tensors to float32");
        double diff = FeatureDifference(source, imported.Backbone, preset);
        Assert.IsTrue(diff is > 0 and < 0.1, $"bf16 weights give features within bf16 rounding of the source (diff {diff})");
    }

    [TestMethod]
    public void ConvertedVitExportsTheSameEmbeddingsWithoutArch()
    {
        var preset = TestPresets.MicroVit;   // not a shipped preset: export finds it in the file's metadata
        string dir = TestData.NewFolder();
        string checkpoint = Path.Combine(dir, "checkpoint.ckpt");
        manual_seed(31);
        using (var moco = new MoCo(preset, BackboneFactory.Create))
        {
            ExportTestModels.Perturb(moco.BaseEncoder.Backbone, preset);
            var plan = new RunPlan { Batch = 8, StepsPerEpoch = 1, TotalSteps = 1, PeakLr = 1e-3, WarmupEpochs = 0, Seed = 0 };
            CheckpointFile.Save(checkpoint, new CheckpointHeader { Preset = preset, Plan = plan, Step = 1, ElapsedSeconds = 0 }, moco, null);
        }

        string folder = Path.Combine(dir, "hf");
        var result = CheckpointConverter.ConvertToSafeTensors(checkpoint, null, null, folder);
        Assert.AreEqual(Path.Combine(folder, "model.safetensors"), result.Output);
        Assert.AreEqual(CheckpointFormat.Timm, result.To);
        Assert.AreEqual(CheckpointContainer.SafeTensors, result.Container);

        using var content = SafeTensorsFile.Read(result.Output);
        Assert.AreEqual("pt", content.Metadata["format"]);
        Assert.AreEqual("timm", content.Metadata[SafeTensorsContent.LayoutKey]);
        Assert.IsTrue(content.Tensors.Any(t => t.Key == "blocks.1.mlp.fc2.weight"), "timm names");
        Assert.AreEqual(result.TensorsWritten, content.Tensors.Count);

        using var config = JsonDocument.Parse(File.ReadAllText(Path.Combine(folder, "config.json")));
        var root = config.RootElement;
        Assert.AreEqual("vit_base_patch16_224", root.GetProperty("architecture").GetString());
        Assert.AreEqual(0, root.GetProperty("num_classes").GetInt32());
        Assert.AreEqual(32, root.GetProperty("num_features").GetInt32());
        var args = root.GetProperty("model_args");
        Assert.AreEqual(16, args.GetProperty("img_size").GetInt32());
        Assert.AreEqual(4, args.GetProperty("patch_size").GetInt32());
        Assert.AreEqual(1, args.GetProperty("in_chans").GetInt32());
        Assert.AreEqual(2, args.GetProperty("depth").GetInt32());
        Assert.AreEqual(2, args.GetProperty("num_heads").GetInt32());
        var cfg = root.GetProperty("pretrained_cfg");
        Assert.AreEqual("[1,16,16]", JsonSerializer.Serialize(cfg.GetProperty("input_size")));
        Assert.AreEqual("[0.286]", JsonSerializer.Serialize(cfg.GetProperty("mean")));
        Assert.AreEqual("[0.353]", JsonSerializer.Serialize(cfg.GetProperty("std")));

        // The same pixels through ONNX exported from the original checkpoint and from the safetensors file.
        using var original = CheckpointImporter.Load(checkpoint, null, null);
        using var converted = CheckpointImporter.Load(result.Output, null, null);   // shipped presets + the file's own
        Assert.AreEqual(preset.Name, converted.Preset.Name);
        manual_seed(5);
        float[] pixels = rand(3, preset.Input.Channels, preset.Input.ImageSize, preset.Input.ImageSize).data<float>().ToArray();
        float[] a = Embed(original, pixels), b = Embed(converted, pixels);
        Assert.AreEqual(3 * preset.Vit.EmbedDim, a.Length);
        Assert.IsTrue(a.Zip(b).Max(p => Math.Abs(p.First - p.Second)) <= 1e-5, "embeddings differ after the round trip");
        Assert.IsTrue(Enumerable.Range(0, preset.Vit.EmbedDim).Any(i => Math.Abs(a[i] - a[preset.Vit.EmbedDim + i]) > 1e-3), "two images gave one embedding");
    }

    [TestMethod]
    public void ConvertedResNetKeepsItsClassifierAndTorchvisionNames()
    {
        var preset = MicroResNet;
        using var source = SourceBackbone(preset, 74);
        string output = TempFile("r.safetensors");
        var result = CheckpointConverter.ConvertToSafeTensors(Flat(source, "fc", "r.pth"), null, preset, output);
        Assert.AreEqual(output, result.Output);
        Assert.AreEqual(CheckpointFormat.Torchvision, result.To);
        Assert.IsTrue(result.Notes.Any(n => n.Contains("3x3 stride-1 stem", StringComparison.Ordinal)), "the small stem is named as something timm cannot build");

        using var config = JsonDocument.Parse(File.ReadAllText(Path.Combine(Path.GetDirectoryName(output)!, "config.json")));
        Assert.AreEqual("resnet18", config.RootElement.GetProperty("architecture").GetString(), "basic blocks [1,1,1,1] → nearest resnet18");
        Assert.AreEqual(10, config.RootElement.GetProperty("num_classes").GetInt32());
        Assert.AreEqual(512, config.RootElement.GetProperty("num_features").GetInt32());
        Assert.AreEqual("conv1", config.RootElement.GetProperty("pretrained_cfg").GetProperty("first_conv").GetString());

        using var back = CheckpointImporter.Load(output, null, null);
        Assert.AreEqual(CheckpointFormat.Torchvision, back.Format);
        Assert.AreEqual(10L, back.Head!.Classes);
        Assert.AreEqual(0.0, FeatureDifference(source, back.Backbone, preset));
    }

    [TestMethod]
    public void ARunConfigIsNotOverwrittenAndTheInputIsNot()
    {
        string dir = TestData.NewFolder();
        string runConfig = Path.Combine(dir, "config.json");
        File.WriteAllText(runConfig, """{"preset": {"name": "x"}}""");
        string input = Path.Combine(dir, "in.pth");
        File.WriteAllBytes(input, [1]);
        var e = Assert.ThrowsExactly<ArgumentException>(() => CheckpointConverter.ConvertToSafeTensors(input, null, null, dir));
        StringAssert.Contains(e.Message, runConfig);
        StringAssert.Contains(e.Message, "not a timm config.json");
        Assert.AreEqual("""{"preset": {"name": "x"}}""", File.ReadAllText(runConfig));
        Assert.IsFalse(File.Exists(Path.Combine(dir, "model.safetensors")));

        string st = Path.Combine(TestData.NewFolder(), "m.safetensors");
        File.WriteAllBytes(st, [1]);
        Assert.ThrowsExactly<ArgumentException>(() => CheckpointConverter.ConvertToSafeTensors(st, null, null, st));
    }

    [TestMethod]
    public void APresetInTheMetadataThatDoesNotFitTheTensorsIsRefused()
    {
        var preset = TestPresets.MicroVit;
        using var source = SourceBackbone(preset, 75);
        var wrong = preset.WithVit(vit => vit with { Depth = 3 }) with { Name = "wrong" };
        string path = TempFile("wrong.safetensors");
        SafeTensorsFile.Write(path, source.state_dict().Select(kv => KeyValuePair.Create(kv.Key, kv.Value)),
                              new Dictionary<string, string> { [SafeTensorsContent.PresetKey] = JsonSerializer.Serialize(wrong, ModelPreset.Json) });
        var e = Assert.ThrowsExactly<InvalidDataException>(() => CheckpointImporter.Load(path, null, null).Dispose());
        StringAssert.StartsWith(e.Message, path + ": no preset matches");
        StringAssert.Contains(e.Message, "depth 2");

        SafeTensorsFile.Write(path, source.state_dict().Select(kv => KeyValuePair.Create(kv.Key, kv.Value)),
                              new Dictionary<string, string> { [SafeTensorsContent.PresetKey] = """{"name": "bad", "arch": "vit", "image_size": -3}""" });
        e = Assert.ThrowsExactly<InvalidDataException>(() => CheckpointImporter.Load(path, null, null).Dispose());
        StringAssert.StartsWith(e.Message, path + " (__metadata__ mocov3.preset)");
    }

    private static float[] Embed(ImportedBackbone imported, float[] pixels)
    {
        var model = OnnxExporter.Export(imported.Backbone, imported.Preset, new ExportOptions());
        using var runner = new OnnxModelRunner(model.ToByteArray());
        return runner.Embed(pixels, 3);
    }
}
