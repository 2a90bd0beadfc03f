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
                p.Name, p.Arch.Name(), $"{p.Channels}x{p.ImageSize}x{p.ImageSize}",
                p.IsVit ? $"{p.EmbedDim}/{p.Depth}/{p.Heads} (patch {p.PatchSize})" : $"{p.Block.Name()} {string.Join("-", p.Layers)}",
                $"{p.Optimizer.Name()} base lr {p.BaseLr:G3}, τ {p.Temperature}, batch {p.Batch}, {p.Epochs} ep",
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
