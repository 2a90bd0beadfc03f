using MoCoV3.Models;
using TorchSharp.Modules;

namespace MoCoV3.Checkpoints;

/// <summary>
/// A trained classifier (backbone + linear head) saved as a plain PyTorch state dict in timm's layout (ViT: our
/// names plus <c>head.weight</c>/<c>head.bias</c>) or torchvision's (ResNet: <c>fc.weight</c>/<c>fc.bias</c>), which
/// timm/torchvision load directly and <c>CheckpointImporter</c> reads back with its head (so <c>mocov3 export --head</c>
/// exports it). The preset goes beside it as <c>preset.json</c> (pass it as <c>--arch</c>: head counts leave no
/// trace in the weights). <c>lincls</c> and <c>finetune</c> write their results this way.
/// </summary>
public static class ClassifierCheckpoint
{
    public const string DefaultName = "checkpoint.pth";
    public const string PresetName = "preset.json";

    /// <summary>Writes <paramref name="path"/> and <c>preset.json</c> in its folder; returns the number of tensors.</summary>
    public static int Save(string path, ModelPreset preset, Backbone backbone, Linear head)
    {
        ArgumentNullException.ThrowIfNull(preset);
        ArgumentNullException.ThrowIfNull(backbone);
        ArgumentNullException.ThrowIfNull(head);
        int written = BackboneStateDict.Write(path, preset, backbone, head.weight, head.bias);
        string folder = Path.GetDirectoryName(Path.GetFullPath(path))!;
        PresetChecksum.Save(Path.Combine(folder, PresetName), preset);
        return written;
    }
}
