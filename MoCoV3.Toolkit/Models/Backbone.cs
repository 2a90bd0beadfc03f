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

    /// <summary>
    /// The ranks of a data-parallel run over which the backbone's BatchNorms normalise in training (SyncBatchNorm); null:
    /// this process's batch. A backbone without BatchNorm (ViT) ignores it.
    /// </summary>
    public virtual MoCoV3.Distributed.ICommunicator? BatchNormRanks { get; set; }

    /// <summary>Width of the feature vector returned by <c>forward</c>.</summary>
    public abstract int FeatureDim { get; }

    /// <summary>Width of <see cref="Embed"/>'s output (the preset's <see cref="BackboneConfig.Embedding"/>).</summary>
    public virtual int EmbeddingDim => FeatureDim;

    /// <summary>
    /// The embedding handed downstream (export, kNN, probe, linear evaluation): <c>forward</c>, unless the preset asks for
    /// more (see <see cref="BackboneConfig.Embedding"/>). Pretraining and fine-tuning heads use <c>forward</c>.
    /// </summary>
    public virtual Tensor Embed(Tensor x) => forward(x);

    /// <summary>
    /// Whether a linear head with <paramref name="inFeatures"/> inputs fits: one on <c>forward</c>'s feature
    /// (<see cref="FeatureDim"/>: fine-tuning, the official linear evaluation) or on the embedding (<see cref="EmbeddingDim"/>:
    /// linear evaluation of a preset whose embedding is wider, as the probe reads it).
    /// </summary>
    public bool AcceptsHead(long inFeatures) => inFeatures == FeatureDim || inFeatures == EmbeddingDim;

    /// <summary>What a linear head with <paramref name="inFeatures"/> inputs reads: <c>forward</c> when that is its width, else <see cref="Embed"/>.</summary>
    public Tensor HeadInput(Tensor x, long inFeatures) =>
        inFeatures == FeatureDim ? forward(x)
        : inFeatures == EmbeddingDim ? Embed(x)
        : throw new ArgumentException($"a head of {inFeatures} inputs fits neither the feature ({FeatureDim}) nor the embedding ({EmbeddingDim})");
}
