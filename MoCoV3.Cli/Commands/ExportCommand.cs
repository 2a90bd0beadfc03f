using System.CommandLine;
using MoCoV3.Data;
using MoCoV3.Export;
using MoCoV3.Checkpoints;
using MoCoV3.Export.Quantization;
using MoCoV3.Models;
using MoCoV3.Runtime;
using static TorchSharp.torch;

namespace MoCoV3.Cli.Commands;

/// <summary><c>mocov3 export</c>: a checkpoint's query backbone to ONNX, optionally checked against TorchSharp in ONNX Runtime.</summary>
public static class ExportCommand
{
    /// <summary>Exit code when <c>--verify</c> finds ONNX Runtime and TorchSharp too far apart.</summary>
    public const int VerifyFailed = 4;

    public static Command Create()
    {
        var checkpoint = new Option<string>("--checkpoint") { Description = "Checkpoint: this toolkit's, official moco-v3 .pth.tar, MMSelfSup/mmpretrain, timm or torchvision, as a torch.save or .safetensors file", Required = true };
        var from = new Option<string>("--from") { Description = "Key layout: auto | toolkit | official | mmselfsup | timm | torchvision (torch.save and safetensors files alike)", DefaultValueFactory = _ => "auto" };
        from.AcceptOnlyFromAmong("auto", "toolkit", "official", "mmselfsup", "timm", "torchvision");
        var arch = new Option<string?>("--arch") { Description = "Preset name or JSON file (default: the checkpoint's own preset)" };
        var output = new Option<string>("--out") { Description = "ONNX file to write", DefaultValueFactory = _ => "model.onnx" };
        var head = new Option<bool>("--head") { Description = "Also export the checkpoint's linear classifier (timm head, torchvision fc) as output 'logits'" };
        var verify = new Option<bool>("--verify") { Description = "Run the exported model in ONNX Runtime and the backbone in TorchSharp on one batch and compare" };
        var fp16 = new Option<bool>("--fp16") { Description = "Float16 weights and compute (input and output stay float32)" };
        var opset = new Option<int>("--opset") { Description = $"ONNX opset ({ExportOptions.MinOpset}-{ExportOptions.MaxOpset})", DefaultValueFactory = _ => ExportOptions.DefaultOpset };
        var data = new Option<string?>("--data") { Description = "Images for --verify: dataset folder or CSV manifest (default: random pixels)" };
        var quantize = new Option<string>("--quantize") { Description = "none | int8: MatMul weights int8, activations quantised at run time (verify bound: cosine >= 0.99)", DefaultValueFactory = _ => "none" };
        quantize.AcceptOnlyFromAmong("none", "int8");
        var embedding = new Option<string?>("--embedding")
        {
            Description = "What output 'embedding' holds (default: the preset's): cls | cls+mean (ViT), either with @lastN for the last N blocks, last first (ViT)",
        };
        var verifyBatch = new Option<int>("--verify-batch") { Description = "Images in the --verify batch", DefaultValueFactory = _ => OnnxVerifier.DefaultBatch };

        var command = new Command("export", "Export a checkpoint's backbone to ONNX (input: pixels in [0,1], output: embedding)")
        {
            checkpoint, from, arch, output, head, verify, fp16, opset, data, verifyBatch, quantize, embedding,
        };
        command.SetAction(r => CliErrors.Run(() => Run(
            r.GetValue(checkpoint)!, r.GetValue(from)!, r.GetValue(arch), r.GetValue(output)!, r.GetValue(head), r.GetValue(verify), r.GetValue(fp16),
            r.GetValue(opset), r.GetValue(data), r.GetValue(verifyBatch), r.GetValue(quantize) == "int8", r.GetValue(embedding))));
        return command;
    }

    private static int Run(string checkpoint, string from, string? arch, string output, bool withHead, bool verify, bool fp16, int opset,
                           string? data, int verifyBatch, bool int8, string? embedding)
    {
        if (verifyBatch <= 0) throw new ArgumentException($"--verify-batch must be positive, found {verifyBatch}");
        if (int8 && fp16) throw new ArgumentException("--quantize int8 and --fp16 exclude each other (int8 quantises the float32 model)");
        TorchRuntime.Initialize("cpu");
        CheckpointFormat? format = from == "auto" ? null : Enum.Parse<CheckpointFormat>(from, ignoreCase: true);
        // Strict import: wrong architecture, missing or mis-shaped tensors are refused by name. For a MoCo v3
        // checkpoint only the query encoder's backbone is kept (no projector, predictor or momentum encoder).
        using var imported = CheckpointImporter.Load(checkpoint, format, arch is null ? null : PresetCatalog.Get(arch));
        var preset = imported.Preset;
        // --embedding only changes what the graph outputs: the same weights, in a backbone built for those features.
        Backbone? rebuilt = null;
        if (embedding is not null)
        {
            preset = preset with { Embedding = embedding };
            preset.Validate("--embedding");
            rebuilt = BackboneFactory.Create(preset);
            rebuilt.load_state_dict(imported.Backbone.state_dict());
            rebuilt.eval();
        }
        using var ownedBackbone = rebuilt;
        var backbone = rebuilt ?? imported.Backbone;
        if (withHead && imported.Head is null)
            throw new ArgumentException($"--head: {checkpoint} holds no linear classifier to export ({imported.Format} layout)");
        var head = withHead ? LinearHead.FromTensors(imported.Head!.Weight, imported.Head.Bias ?? zeros(imported.Head.Classes)) : null;

        var options = new ExportOptions { Opset = opset, Fp16 = fp16, Head = head };
        var onnx = OnnxExporter.Export(backbone, preset, options);
        string precision = fp16 ? "fp16" : "fp32";
        if (int8)
        {
            var quantized = DynamicInt8Quantizer.Quantize(onnx);
            Console.WriteLine($"quantised: {quantized}");
            onnx = quantized.Model;
            precision = DynamicInt8Quantizer.Precision;
        }
        OnnxExporter.Save(onnx, output, options.ExternalDataThresholdBytes);
        long bytes = new FileInfo(output).Length;
        string external = File.Exists(output + ".data") ? $" + external data {output}.data" : "";
        Console.WriteLine($"wrote {output} ({bytes / 1e6:F1} MB{external}): {preset.Arch} '{preset.Name}', opset {opset}, " +
                          $"{precision}, {onnx.Graph.Node.Count} nodes, input [N,{preset.Channels},{preset.ImageSize},{preset.ImageSize}] " +
                          $"-> embedding [N,{backbone.EmbeddingDim}]");
        if (!verify) return 0;

        using var pixels = data is null
            ? TorchReference.RandomPixels(verifyBatch, preset.Channels, preset.ImageSize)
            : TorchReference.FirstImages(DatasetFactory.Open(DatasetFactory.AutoKind, data, preset.ImageSize, preset.Channels, train: false), verifyBatch);
        var result = OnnxVerifier.Verify(output, backbone, preset, pixels, verifyBatch);
        Console.WriteLine(FormattableString.Invariant($"max_abs_diff={result.MaxAbsDiff:G3} cosine_min={result.CosineMin:F6} batch={result.Batch}"));
        // With --head, the logits too: the head on the class token (the embedding may hold more than the class token).
        var logits = head is null ? null : OnnxVerifier.VerifyLogits(output, backbone, head, preset, pixels);
        if (logits is not null)
            Console.WriteLine(FormattableString.Invariant($"logits: max_abs_diff={logits.MaxAbsDiff:G3} cosine_min={logits.CosineMin:F6} batch={logits.Batch}"));
        if (result.Passed && logits?.Passed != false)
        {
            Console.WriteLine("verify: passed");
            return 0;
        }
        foreach (var (what, failed) in new[] { ("embedding", result), ("logits", logits) })
        {
            if (failed is null || failed.Passed) continue;
            Console.Error.WriteLine(failed.CosineBound is { } bound
                ? FormattableString.Invariant($"error: verify failed: {output}: {what} cosine_min {failed.CosineMin:F6} < {bound}")
                : FormattableString.Invariant($"error: verify failed: {output}: {what} max_abs_diff {failed.MaxAbsDiff:G3} > {failed.Fp32Bound:G3}"));
        }
        return VerifyFailed;
    }
}
