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
}
