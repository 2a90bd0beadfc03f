using MoCoV3.Checkpoints;

namespace MoCoV3.Export;

/// <summary>What <see cref="CheckpointExport.Run"/> exports and how (the options of <c>mocov3 export</c>).</summary>
public sealed record CheckpointExportOptions
{
    /// <summary>The checkpoint, its key layout (null = from its keys) and preset (null = its own or from its shapes).</summary>
    public required WeightsOptions Weights { get; init; }
    /// <summary>The ONNX file to write.</summary>
    public required string Output { get; init; }
    /// <summary>Also export the checkpoint's linear classifier (timm head, torchvision fc) as output <c>logits</c>.</summary>
    public bool WithHead { get; init; }
    public bool Fp16 { get; init; }
    /// <summary>MatMul weights int8, activations quantised at run time; excludes <see cref="Fp16"/>.</summary>
    public bool Int8 { get; init; }
    public int Opset { get; init; } = ExportOptions.DefaultOpset;
    /// <summary>What output <c>embedding</c> holds (e.g. <c>cls+mean@last4</c>); null = the preset's.</summary>
    public string? Embedding { get; init; }
    /// <summary>Run the file in ONNX Runtime and the backbone in TorchSharp on one batch and compare.</summary>
    public bool Verify { get; init; }
    /// <summary>Images for <see cref="Verify"/>: a dataset folder or CSV manifest (its test split); null = random pixels.</summary>
    public string? VerifyData { get; init; }
    public int VerifyBatch { get; init; } = OnnxVerifier.DefaultBatch;
}
