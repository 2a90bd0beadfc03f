using MoCoV3.Checkpoints;
using MoCoV3.Models;

namespace MoCoV3.Export.Checkpoints;

/// <summary>What a conversion read and wrote.</summary>
public sealed record ConversionResult(ModelPreset Preset, CheckpointFormat From, CheckpointFormat To, string Output, int TensorsWritten, ImportReport Report);
