// ExportFromCSharp: import a pretrained checkpoint, export its backbone to ONNX, verify ONNX Runtime against TorchSharp.
//   dotnet run -- CHECKPOINT OUT.onnx [PRESET]
// CHECKPOINT: an official moco-v3 .pth.tar, an MMSelfSup/mmpretrain .pth, a timm or torchvision state dict, or this
// toolkit's .ckpt; the layout is detected, and the architecture from the tensor shapes unless PRESET names it
// (vit-small, vit-base, resnet50, ...).
using MoCoV3.Export;
using MoCoV3.Checkpoints;
using MoCoV3.Models;
using MoCoV3.Runtime;

if (args.Length is < 2 or > 3)
{
    Console.Error.WriteLine("usage: ExportFromCSharp CHECKPOINT OUT.onnx [PRESET]");
    return 1;
}

try
{
    TorchRuntime.Initialize("cpu");
    ModelPreset? arch = args.Length == 3 ? PresetCatalog.Get(args[2]) : null;
    // Strict: a missing, unexpected or mis-shaped tensor is refused by name and nothing is loaded.
    using var imported = CheckpointImporter.Load(args[0], format: null, arch);
    Console.WriteLine($"{args[0]}: {imported.Format} layout, preset '{imported.Preset.Name}' ({imported.Preset.Arch}, " +
                      $"{imported.Preset.Input.Channels}x{imported.Preset.Input.ImageSize}x{imported.Preset.Input.ImageSize})");

    OnnxExporter.ExportToFile(imported.Backbone, imported.Preset, new ExportOptions(), args[1]);
    Console.WriteLine($"wrote {args[1]} ({new FileInfo(args[1]).Length / 1e6:F1} MB)");

    var check = OnnxVerifier.Verify(args[1], imported.Backbone, imported.Preset, pixels: null, batch: 8);
    Console.WriteLine(FormattableString.Invariant($"verify: max_abs_diff={check.MaxAbsDiff:G3} cosine_min={check.CosineMin:F6} -> {(check.Passed ? "passed" : "FAILED")}"));
    return check.Passed ? 0 : 4;
}
catch (Exception e) when (e is IOException or InvalidDataException or ArgumentException or MoCoV3.DataFormatException)
{
    Console.Error.WriteLine($"error: {e.Message}");
    return 2;
}
