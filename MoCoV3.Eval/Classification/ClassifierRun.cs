using System.Text.Json;
using MoCoV3.Checkpoints;
using MoCoV3.Data;
using MoCoV3.IO;
using MoCoV3.Models;
using MoCoV3.Runtime;
using static TorchSharp.torch;

namespace MoCoV3.Eval.Classification;

/// <summary>
/// What <c>lincls</c> and <c>finetune</c> share around their training loops: libtorch initialised on the device, the output
/// folder made, the seed set, the pretrained backbone imported (its report sent as notes), the train and test splits opened
/// at the backbone's input size with their limits (the first N images) and checked to have the same classes; and at the
/// end, the classifier checkpoint, the ONNX classifier verified against TorchSharp on test images, and <c>results.json</c>.
/// </summary>
internal sealed class ClassifierRun : IDisposable
{
    private readonly ImportedBackbone imported;

    private ClassifierRun(Device device, string outputDir, ImportedBackbone imported, IImageDataset train, IImageDataset test)
    {
        (Device, OutputDir, this.imported, Train, Test) = (device, outputDir, imported, train, test);
    }

    public Device Device { get; }
    public string OutputDir { get; }
    public ModelPreset Preset => imported.Preset;
    /// <summary>The imported backbone, on the CPU (the caller moves it once it has set what trains).</summary>
    public Backbone Backbone => imported.Backbone;
    public IImageDataset Train { get; }
    public IImageDataset Test { get; }
    public int Classes => Train.ClassNames.Count;

    public static ClassifierRun Start(WeightsOptions weights, DataOptions data, ComputeOptions compute, string outputDir, long seed, Action<string>? info)
    {
        var device = TorchRuntime.Initialize(compute, training: true);
        Directory.CreateDirectory(outputDir);
        manual_seed(seed);
        var imported = CheckpointImporter.Load(weights.Checkpoint, weights.Format, weights.Arch);
        try
        {
            foreach (var line in imported.Report.Lines()) info?.Invoke(line);
            var preset = imported.Preset;
            IImageDataset train = data.Open(preset.Input.ImageSize, preset.Input.Channels, train: true);
            IImageDataset test = data.Open(preset.Input.ImageSize, preset.Input.Channels, train: false);
            if (data.Limit is int limit && limit < train.Count) train = new SubsetDataset(train, limit);
            if (data.TestLimit is int testLimit && testLimit < test.Count) test = new SubsetDataset(test, testLimit);
            if (!train.ClassNames.SequenceEqual(test.ClassNames))
                throw new InvalidDataException($"{test.Source}: the test classes ({string.Join(", ", test.ClassNames.Take(5))}…) differ from the training classes of {train.Source}");
            return new ClassifierRun(device, outputDir, imported, train, test);
        }
        catch
        {
            imported.Dispose();
            throw;
        }
    }

    /// <summary>Where <see cref="SaveCheckpoint"/> writes the classifier (in a data-parallel run, rank 0 alone writes it).</summary>
    public string CheckpointPath => Path.Combine(OutputDir, ClassifierCheckpoint.DefaultName);

    /// <summary>Saves the trained classifier as <see cref="ClassifierCheckpoint"/> (<c>checkpoint.pth</c> + <c>preset.json</c>) in the output folder; returns its path.</summary>
    public string SaveCheckpoint(BackboneClassifier model)
    {
        string checkpoint = CheckpointPath;
        ClassifierCheckpoint.Save(checkpoint, Preset, model.Backbone, model.Head);
        return checkpoint;
    }

    /// <summary>
    /// Exports the classifier to <paramref name="onnxPath"/> (the training classes' names and <paramref name="key"/> =
    /// <paramref name="summary"/> in its metadata) and compares ONNX Runtime with TorchSharp on the first
    /// <paramref name="verifyImages"/> test images.
    /// </summary>
    public ClassifierVerifyResult ExportAndVerify(BackboneClassifier model, string onnxPath, string key, string summary, int verifyImages)
    {
        ClassifierExport.Export(model, Preset, onnxPath, Train.ClassNames, new Dictionary<string, string> { [key] = summary });
        using var pixels = ClassifierExport.Pixels(Test, verifyImages);
        return ClassifierExport.Verify(onnxPath, model, Preset, pixels);
    }

    /// <summary>Writes <paramref name="results"/> as indented JSON to <c>results.json</c> in the output folder.</summary>
    public void WriteResults(object results) =>
        DurableFile.WriteAllText(Path.Combine(OutputDir, "results.json"), JsonSerializer.Serialize(results, new JsonSerializerOptions { WriteIndented = true }));

    public void Dispose() => imported.Dispose();
}
