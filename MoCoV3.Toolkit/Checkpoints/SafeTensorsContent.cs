using static TorchSharp.torch;

namespace MoCoV3.Checkpoints;

/// <summary>The tensors of a safetensors file, in header order, and its <c>__metadata__</c> strings; owns (and disposes) the tensors.</summary>
public sealed class SafeTensorsContent(IReadOnlyList<KeyValuePair<string, Tensor>> tensors, IReadOnlyDictionary<string, string> metadata) : IDisposable
{
    /// <summary>The metadata key under which the toolkit stores the preset (JSON) of the backbone it wrote.</summary>
    public const string PresetKey = "mocov3.preset";

    /// <summary>The metadata key under which the toolkit stores the key layout it wrote (<c>timm</c>, <c>torchvision</c>).</summary>
    public const string LayoutKey = "mocov3.layout";

    public IReadOnlyList<KeyValuePair<string, Tensor>> Tensors { get; } = tensors;

    public IReadOnlyDictionary<string, string> Metadata { get; } = metadata;

    public void Dispose()
    {
        foreach (var (_, t) in Tensors) t.Dispose();
    }
}
