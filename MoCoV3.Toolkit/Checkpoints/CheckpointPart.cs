namespace MoCoV3.Checkpoints;

/// <summary>What a key of a checkpoint holds, once its layout is known.</summary>
public enum CheckpointPart
{
    /// <summary>A tensor of the backbone (query encoder): loaded.</summary>
    Backbone,

    /// <summary>A linear classifier on the backbone's features (timm <c>head</c>, torchvision <c>fc</c>): kept apart.</summary>
    ClassifierHead,

    /// <summary>The projector MLP of the query encoder: skipped by a backbone import.</summary>
    Projector,

    /// <summary>The predictor MLP: skipped by a backbone import.</summary>
    Predictor,

    /// <summary>The momentum (key) encoder: skipped by a backbone import (it is an average of the query encoder).</summary>
    MomentumEncoder,

    /// <summary>Not a model tensor (e.g. mmengine's <c>momentum_encoder.steps</c>, data-preprocessor buffers): skipped.</summary>
    Bookkeeping,
}

/// <summary>A checkpoint key resolved by a <see cref="KeyLayout"/>: its part and, for backbone and classifier keys, our name.</summary>
/// <param name="Part">What the key holds.</param>
/// <param name="Name">Our backbone name (<c>blocks.0.norm1.weight</c>) for <see cref="CheckpointPart.Backbone"/>;
/// <c>weight</c> or <c>bias</c> for <see cref="CheckpointPart.ClassifierHead"/>; the key unchanged otherwise.</param>
public readonly record struct MappedKey(CheckpointPart Part, string Name);
