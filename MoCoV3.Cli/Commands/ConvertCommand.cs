using System.CommandLine;
using MoCoV3.Checkpoints;
using MoCoV3.Models;

namespace MoCoV3.Cli.Commands;

internal static class ConvertCommand
{
    public static Command Create()
    {
        var checkpoint = new Option<string>("--checkpoint") { Description = "Checkpoint to read: a toolkit checkpoint, a torch.save file (.pth, .pth.tar) or a .safetensors file", Required = true };
        var from = new Option<string>("--from") { Description = "auto | toolkit | official | mmselfsup | timm | torchvision", DefaultValueFactory = _ => "auto" };
        from.AcceptOnlyFromAmong("auto", "toolkit", "official", "mmselfsup", "timm", "torchvision");
        var arch = new Option<string?>("--arch") { Description = "Preset name or preset JSON of the backbone (default: the shipped preset whose shapes match)" };
        var to = new Option<string>("--to")
        {
            Description = "toolkit | timm | official | safetensors (timm/torchvision names in model.safetensors, plus timm's config.json beside it)",
            Required = true,
        };
        to.AcceptOnlyFromAmong("toolkit", "timm", "official", "safetensors");
        var output = new Option<string>("--out") { Description = "File to write; for --to safetensors a .safetensors file or a folder (gets model.safetensors)", Required = true };

        var command = new Command("convert", "Convert the backbone of a checkpoint between the toolkit, official moco-v3, MMSelfSup, timm and torchvision layouts, or to safetensors")
        {
            checkpoint, from, arch, to, output,
        };
        command.SetAction(r => CliErrors.Run(() =>
        {
            string fromName = r.GetValue(from)!;
            CheckpointFormat? source = fromName == "auto" ? null : Enum.Parse<CheckpointFormat>(fromName, ignoreCase: true);
            string? archName = r.GetValue(arch);
            ModelPreset? preset = archName is null ? null : PresetCatalog.Get(archName);
            string target = r.GetValue(to)!;
            var result = target == "safetensors"
                ? CheckpointConverter.ConvertToSafeTensors(r.GetValue(checkpoint)!, source, preset, r.GetValue(output)!)
                : CheckpointConverter.Convert(r.GetValue(checkpoint)!, source, preset, Enum.Parse<CheckpointFormat>(target, ignoreCase: true), r.GetValue(output)!);
            foreach (var line in result.Report.Lines()) Console.WriteLine(line);
            foreach (var note in result.Notes) Console.WriteLine(note);
            string kind = result.Container == CheckpointContainer.SafeTensors ? $"safetensors file ({result.To} names)" : $"{result.To} checkpoint";
            Console.WriteLine($"wrote {result.Output}: {kind} of preset '{result.Preset.Name}', {result.TensorsWritten} tensors" +
                              (result.To == CheckpointFormat.Toolkit ? " (projector and predictor freshly initialised)" : ""));
            if (result.Config is not null) Console.WriteLine($"wrote {result.Config}: timm config (architecture, input size, mean/std)");
            return 0;
        }));
        return command;
    }
}
