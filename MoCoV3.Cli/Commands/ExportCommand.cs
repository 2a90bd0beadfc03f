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
        TorchRuntime.Initialize("cpu");
        var weights = new WeightsOptions
        {
            Checkpoint = checkpoint,
            Format = from == "auto" ? null : Enum.Parse<CheckpointFormat>(from, ignoreCase: true),
            Arch = arch is null ? null : PresetCatalog.Get(arch),
        };
        var result = CheckpointExport.Run(new CheckpointExportOptions
        {
            Weights = weights, Output = output, WithHead = withHead, Fp16 = fp16, Int8 = int8, Opset = opset, Embedding = embedding,
            Verify = verify, VerifyData = data, VerifyBatch = verifyBatch,
        }, Console.WriteLine);
        var preset = result.Preset;
        string external = result.ExternalData is null ? "" : $" + external data {result.ExternalData}";
        Console.WriteLine($"wrote {output} ({result.Bytes / 1e6:F1} MB{external}): {preset.Arch.Name()} '{preset.Name}', opset {opset}, " +
                          $"{result.Precision}, {result.Nodes} nodes, input [N,{preset.Input.Channels},{preset.Input.ImageSize},{preset.Input.ImageSize}] " +
                          $"-> embedding [N,{result.EmbeddingDim}]");
        if (result.Embedding is not { } embedded) return 0;

        Console.WriteLine(FormattableString.Invariant($"max_abs_diff={embedded.MaxAbsDiff:G3} cosine_min={embedded.CosineMin:F6} batch={embedded.Batch}"));
        if (result.Logits is { } logits)
            Console.WriteLine(FormattableString.Invariant($"logits: max_abs_diff={logits.MaxAbsDiff:G3} cosine_min={logits.CosineMin:F6} batch={logits.Batch}"));
        if (result.Passed)
        {
            Console.WriteLine("verify: passed");
            return 0;
        }
        foreach (var (what, failed) in new[] { ("embedding", result.Embedding), ("logits", result.Logits) })
        {
            if (failed is null || failed.Passed) continue;
            Console.Error.WriteLine(failed.CosineBound is { } bound
                ? FormattableString.Invariant($"error: verify failed: {output}: {what} cosine_min {failed.CosineMin:F6} < {bound}")
                : FormattableString.Invariant($"error: verify failed: {output}: {what} max_abs_diff {failed.MaxAbsDiff:G3} > {failed.Fp32Bound:G3}"));
        }
        return VerifyFailed;
    }
}
