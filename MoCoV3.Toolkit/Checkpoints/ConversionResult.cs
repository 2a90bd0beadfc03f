using MoCoV3.Checkpoints;
using MoCoV3.Models;

namespace MoCoV3.Checkpoints;

/// <summary>What a conversion read and wrote.</summary>
public sealed record ConversionResult(ModelPreset Preset, CheckpointFormat From, CheckpointFormat To, string Output, int TensorsWritten, ImportReport Report)
{
    /// <summary>The kind of file written (<see cref="Output"/>).</summary>
    public CheckpointContainer Container { get; init; } = CheckpointContainer.TorchSave;

    /// <summary>The timm <c>config.json</c> written beside a safetensors file, else null.</summary>
    public string? Config { get; init; }

    /// <summary>What the user should know about the written files.</summary>
    public IReadOnlyList<string> Notes { get; init; } = [];
}
