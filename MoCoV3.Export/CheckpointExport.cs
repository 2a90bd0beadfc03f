using MoCoV3.Checkpoints;
using MoCoV3.Data;
using MoCoV3.Export.Quantization;
using MoCoV3.Models;
using static TorchSharp.torch;

namespace MoCoV3.Export;

/// <summary>
/// The export workflow of <c>mocov3 export</c> as a library call: import a checkpoint strictly (wrong architecture, missing
/// or mis-shaped tensors are refused by name; of a MoCo v3 checkpoint only the query backbone is kept), optionally swap
/// what the embedding holds, export to ONNX (fp32, fp16 or dynamic int8, with the classifier head if asked), save it
/// (external data for large models) and verify it in ONNX Runtime against TorchSharp. libtorch must be initialised.
/// </summary>
public static class CheckpointExport
{
    public static CheckpointExportResult Run(CheckpointExportOptions o, Action<string>? info = null)
    {
        ArgumentNullException.ThrowIfNull(o);
        if (o.VerifyBatch <= 0) throw new ArgumentException($"--verify-batch must be positive, found {o.VerifyBatch}");
        if (o.Int8 && o.Fp16) throw new ArgumentException("--quantize int8 and --fp16 exclude each other (int8 quantises the float32 model)");
        using var imported = CheckpointImporter.Load(o.Weights.Checkpoint, o.Weights.Format, o.Weights.Arch);
        var preset = imported.Preset;
        // --embedding only changes what the graph outputs: the same weights, in a backbone built for those features.
        Backbone? rebuilt = null;
        if (o.Embedding is not null)
        {
            preset = preset.WithEmbedding(o.Embedding);
            preset.Validate("--embedding");
            rebuilt = BackboneFactory.Create(preset);
            rebuilt.load_state_dict(imported.Backbone.state_dict());
            rebuilt.eval();
        }
        using var ownedBackbone = rebuilt;
        var backbone = rebuilt ?? imported.Backbone;
        if (o.WithHead && imported.Head is null)
            throw new ArgumentException($"--head: {o.Weights.Checkpoint} holds no linear classifier to export ({imported.Format} layout)");
        var head = o.WithHead ? LinearHead.FromTensors(imported.Head!.Weight, imported.Head.Bias ?? zeros(imported.Head.Classes)) : null;

        var options = new ExportOptions { Opset = o.Opset, Fp16 = o.Fp16, Head = head };
        var onnx = OnnxExporter.Export(backbone, preset, options);
        string precision = o.Fp16 ? "fp16" : "fp32";
        if (o.Int8)
        {
            var quantized = DynamicInt8Quantizer.Quantize(onnx);
            info?.Invoke($"quantised: {quantized}");
            onnx = quantized.Model;
            precision = DynamicInt8Quantizer.Precision;
        }
        OnnxExporter.Save(onnx, o.Output, options.ExternalDataThresholdBytes);
        var written = new CheckpointExportResult
        {
            Output = o.Output, Bytes = new FileInfo(o.Output).Length, ExternalData = File.Exists(o.Output + ".data") ? o.Output + ".data" : null,
            Preset = preset, Precision = precision, Opset = o.Opset, Nodes = onnx.Graph.Node.Count, EmbeddingDim = backbone.EmbeddingDim,
        };
        if (!o.Verify) return written;

        using var pixels = o.VerifyData is null
            ? TorchReference.RandomPixels(o.VerifyBatch, preset.Input.Channels, preset.Input.ImageSize)
            : TorchReference.FirstImages(DatasetFactory.Open(DatasetFactory.AutoKind, o.VerifyData, preset.Input.ImageSize, preset.Input.Channels, train: false), o.VerifyBatch);
        var embedding = OnnxVerifier.Verify(o.Output, backbone, preset, pixels, o.VerifyBatch);
        // With a head, the logits too: the head on the class token (the embedding may hold more than the class token).
        var logits = head is null ? null : OnnxVerifier.VerifyLogits(o.Output, backbone, head, preset, pixels);
        return written with { Embedding = embedding, Logits = logits };
    }
}

/// <summary>What <see cref="CheckpointExport.Run"/> wrote, and what verifying it found.</summary>
public sealed record CheckpointExportResult
{
    public required string Output { get; init; }
    public required long Bytes { get; init; }
    /// <summary>The external-data file beside <see cref="Output"/> (models over 2 GB); null when the weights are inside it.</summary>
    public string? ExternalData { get; init; }
    /// <summary>The preset exported (with the embedding asked for).</summary>
    public required ModelPreset Preset { get; init; }
    /// <summary><c>fp32</c>, <c>fp16</c> or <c>int8</c>.</summary>
    public required string Precision { get; init; }
    public required int Opset { get; init; }
    public required int Nodes { get; init; }
    public required int EmbeddingDim { get; init; }
    /// <summary>The embedding's comparison with TorchSharp; null when not verified.</summary>
    public VerifyResult? Embedding { get; init; }
    /// <summary>The logits' comparison (with a head); null without.</summary>
    public VerifyResult? Logits { get; init; }
    /// <summary>Whether every verification run passed (true when none ran).</summary>
    public bool Passed => Embedding?.Passed != false && Logits?.Passed != false;
}
