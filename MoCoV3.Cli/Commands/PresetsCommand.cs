using System.CommandLine;
using MoCoV3.Models;
using Spectre.Console;

namespace MoCoV3.Cli.Commands;

internal static class PresetsCommand
{
    public static Command Create()
    {
        var command = new Command("presets", "List the named model presets (models/*.json)");
        command.SetAction(_ => CliErrors.Run(() =>
        {
            string[] header = ["name", "arch", "input", "width/depth/heads", "recipe", "description"];
            var rows = PresetCatalog.All().Select(p => new[]
            {
                p.Name, p.Arch.Name(), $"{p.Input.Channels}x{p.Input.ImageSize}x{p.Input.ImageSize}",
                p.Backbone switch
                {
                    VitConfig vit => $"{vit.EmbedDim}/{vit.Depth}/{vit.Heads} (patch {vit.PatchSize})",
                    ResNetConfig resnet => $"{resnet.Block.Name()} {string.Join("-", resnet.Layers)}",
                    _ => p.Arch.Name(),
                },
                $"{p.Recipe.Optimizer.Name()} base lr {p.Recipe.BaseLr:G3}, τ {p.Recipe.Temperature}, batch {p.Recipe.Batch}, {p.Recipe.Epochs} ep",
                p.Description,
            }).ToList();
            if (Console.IsOutputRedirected)
            {
                // Plain tab-separated lines for scripts and logs.
                foreach (var row in rows.Prepend(header)) Console.WriteLine(string.Join('\t', row));
                return 0;
            }
            var table = new Table();
            foreach (var column in header) table.AddColumn(new TableColumn(column) { NoWrap = column == "name" });
            foreach (var row in rows) table.AddRow(row.Select(Markup.Escape).ToArray());
            AnsiConsole.Write(table);
            return 0;
        }));
        return command;
    }
}
