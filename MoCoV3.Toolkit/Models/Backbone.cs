using TorchSharp;
using static TorchSharp.torch;

namespace MoCoV3.Models;

/// <summary>
/// An encoder without its classification head: images <c>[N, C, H, W]</c> in, features <c>[N, FeatureDim]</c> out.
/// For a ViT the feature is the class token after the final norm; for a ResNet the global average pool.
/// </summary>
public abstract class Backbone : nn.Module<Tensor, Tensor>
{
    protected Backbone(string name) : base(name) { }

    /// <summary>Width of the feature vector returned by <c>forward</c>.</summary>
    public abstract int FeatureDim { get; }

    /// <summary>Width of <see cref="Embed"/>'s output (the preset's <see cref="ModelPreset.Embedding"/>).</summary>
    public virtual int EmbeddingDim => FeatureDim;

    /// <summary>
    /// The embedding handed downstream (export, kNN, probe): <c>forward</c>, unless the preset asks for more (see
    /// <see cref="ModelPreset.Embedding"/>). Training and classification heads use <c>forward</c>.
    /// </summary>
    public virtual Tensor Embed(Tensor x) => forward(x);
}
