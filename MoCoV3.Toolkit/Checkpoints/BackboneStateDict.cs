using System.Collections.Specialized;
using MoCoV3.Models;
using static TorchSharp.torch;

namespace MoCoV3.Checkpoints;

/// <summary>
/// A backbone (and optional linear classifier) as a state dict under a key layout's names: by default timm's (ViT: our
/// names, classifier <c>head.*</c>) or torchvision's (ResNet: classifier <c>fc.*</c>). The one writer of backbone state
/// dicts, for <c>convert --to timm|official</c>, <c>--to safetensors</c> and the classifier checkpoints of
/// <c>lincls</c>/<c>finetune</c>.
/// </summary>
public static class BackboneStateDict
{
    /// <summary>The layout for <paramref name="preset"/>: timm for a ViT, torchvision for a ResNet.</summary>
    public static KeyLayout LayoutFor(ModelPreset preset)
    {
        ArgumentNullException.ThrowIfNull(preset);
        return KeyLayout.For(preset.IsVit ? CheckpointFormat.Timm : CheckpointFormat.Torchvision);
    }

    /// <summary>
    /// Detached, contiguous CPU handles of the tensors in the model's order (an ordered dict pickles as one), owned by the
    /// caller (<see cref="Dispose"/>), named by <paramref name="layout"/> (default: <see cref="LayoutFor"/>).
    /// </summary>
    public static OrderedDictionary Build(ModelPreset preset, Backbone backbone, Tensor? headWeight = null, Tensor? headBias = null,
                                          KeyLayout? layout = null)
    {
        ArgumentNullException.ThrowIfNull(backbone);
        layout ??= LayoutFor(preset);
        var state = new OrderedDictionary(StringComparer.Ordinal);
        using var scope = NewDisposeScope();   // owns the detach() temporaries
        foreach (var (name, value) in backbone.state_dict())
            state[layout.FromBackbone(name)] = Copy(value);
        if (headWeight is not null) state[layout.FromClassifier("weight", preset.IsVit)] = Copy(headWeight);
        if (headBias is not null) state[layout.FromClassifier("bias", preset.IsVit)] = Copy(headBias);
        return state;
    }

    /// <summary>Writes the state dict as a torch.save file (durably); returns the number of tensors.</summary>
    public static int Write(string path, ModelPreset preset, Backbone backbone, Tensor? headWeight = null, Tensor? headBias = null)
    {
        var state = Build(preset, backbone, headWeight, headBias);
        try
        {
            PyTorchFile.Write(path, state);
            return state.Count;
        }
        finally
        {
            Dispose(state);
        }
    }

    public static void Dispose(OrderedDictionary state)
    {
        ArgumentNullException.ThrowIfNull(state);
        foreach (var t in state.Values.OfType<Tensor>()) t.Dispose();
    }

    // New handles on the same storage where nothing needs copying: disposing them never frees the model's tensors.
    private static Tensor Copy(Tensor value) => value.detach().cpu().contiguous().DetachFromDisposeScope();
}
