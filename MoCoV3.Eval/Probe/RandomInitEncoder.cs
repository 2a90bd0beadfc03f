using MoCoV3.Inference;
using MoCoV3.Export;
using MoCoV3.Models;
using MoCoV3.Runtime;
using static TorchSharp.torch;

namespace MoCoV3.Eval.Probe;

/// <summary>
/// The random-init baseline's encoder: the architecture an exported encoder names in its metadata
/// (<see cref="OnnxMetadata.Preset"/>), built with fresh seeded weights and exported the same way.
/// </summary>
public static class RandomInitEncoder
{
    /// <summary>Reads the preset from <paramref name="metadata"/> of the model at <paramref name="source"/>, builds it with
    /// <c>manual_seed(seed)</c> and writes it to <paramref name="path"/>.</summary>
    /// <exception cref="InvalidDataException">The metadata has no preset, or it does not describe a model.</exception>
    public static ModelPreset Export(IReadOnlyDictionary<string, string> metadata, string source, int seed, string path)
    {
        var preset = PresetCatalog.FromOnnxMetadata(metadata, source, "the architecture for the random-init baseline is unknown");

        TorchRuntime.Initialize("cpu");
        manual_seed(seed);
        using var backbone = BackboneFactory.Create(preset);
        backbone.eval();
        OnnxExporter.ExportToFile(backbone, preset, new ExportOptions { Recipe = $"random initialisation (seed {seed}), no training" }, path);
        return preset;
    }
}
