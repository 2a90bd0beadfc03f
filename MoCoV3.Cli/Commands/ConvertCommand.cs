using System.CommandLine;
using MoCoV3.Checkpoints;
using MoCoV3.Export.Checkpoints;
using MoCoV3.Models;

namespace MoCoV3.Cli.Commands;

internal static class ConvertCommand
{
    public static Command Create()
    {
        var checkpoint = new Option<string>("--checkpoint") { Description = "Checkpoint to read: a toolkit checkpoint or a torch.save file (.pth, .pth.tar)", Required = true };
        var from = new Option<string>("--from") { Description = "auto | toolkit | official | mmselfsup | timm | torchvision", DefaultValueFactory = _ => "auto" };
        from.AcceptOnlyFromAmong("auto", "toolkit", "official", "mmselfsup", "timm", "torchvision");
        var arch = new Option<string?>("--arch") { Description = "Preset name or preset JSON of the backbone (default: the shipped preset whose shapes match)" };
        var to = new Option<string>("--to") { Description = "toolkit | timm | official", Required = true };
        to.AcceptOnlyFromAmong("toolkit", "timm", "official");
        var output = new Option<string>("--out") { Description = "File to write", Required = true };

        var command = new Command("convert", "Convert the backbone of a checkpoint between the toolkit, official moco-v3, MMSelfSup, timm and torchvision layouts")
        {
            checkpoint, from, arch, to, output,
        };
        command.SetAction(r => CliErrors.Run(() =>
        {
            string fromName = r.GetValue(from)!;
            CheckpointFormat? source = fromName == "auto" ? null : Enum.Parse<CheckpointFormat>(fromName, ignoreCase: true);
            string? archName = r.GetValue(arch);
            ModelPreset? preset = archName is null ? null : PresetCatalog.Get(archName);
            var result = CheckpointConverter.Convert(r.GetValue(checkpoint)!, source, preset, Enum.Parse<CheckpointFormat>(r.GetValue(to)!, ignoreCase: true), r.GetValue(output)!);
            foreach (var line in result.Report.Lines()) Console.WriteLine(line);
            Console.WriteLine($"wrote {result.Output}: {result.To} checkpoint of preset '{result.Preset.Name}', {result.TensorsWritten} tensors" +
                              (result.To == CheckpointFormat.Toolkit ? " (projector and predictor freshly initialised)" : ""));
            return 0;
        }));
        return command;
    }
}
