using MoCoV3.Checkpoints;
using MoCoV3.Models;

namespace MoCoV3.Checkpoints;

/// <summary>A backbone built from a preset and loaded, strictly, from a checkpoint; owns its tensors.</summary>
public sealed class ImportedBackbone : IDisposable
{
    public required ModelPreset Preset { get; init; }
    public required Backbone Backbone { get; init; }
    /// <summary>The layout the checkpoint was read as (given or detected).</summary>
    public required CheckpointFormat Format { get; init; }
    /// <summary>A classifier found in the checkpoint (timm <c>head</c>, torchvision <c>fc</c>, mmpretrain <c>head.fc</c>), else null.</summary>
    public ClassifierHead? Head { get; init; }
    public required ImportReport Report { get; init; }

    public void Dispose()
    {
        Backbone.Dispose();
        Head?.Dispose();
    }
}
