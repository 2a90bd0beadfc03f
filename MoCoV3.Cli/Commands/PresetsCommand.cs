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
            var table = new Table().AddColumns("name", "arch", "input", "width/depth/heads", "recipe", "description");
            foreach (var p in PresetCatalog.All())
            {
                string shape = p.IsVit ? $"{p.EmbedDim}/{p.Depth}/{p.Heads} (patch {p.PatchSize})" : $"{p.Block} {string.Join("-", p.Layers)}";
                string recipe = $"{p.Optimizer} base lr {p.BaseLr:G3}, τ {p.Temperature}, batch {p.Batch}, {p.Epochs} ep";
                table.AddRow(Markup.Escape(p.Name), p.Arch, $"{p.Channels}x{p.ImageSize}x{p.ImageSize}", Markup.Escape(shape),
                    Markup.Escape(recipe), Markup.Escape(p.Description));
            }
            AnsiConsole.Write(table);
            return 0;
        }));
        return command;
    }
}
