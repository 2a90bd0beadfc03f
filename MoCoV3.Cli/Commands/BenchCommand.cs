using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using MoCoV3.Models;
using MoCoV3.Training;

namespace MoCoV3.Cli.Commands;

internal static class BenchCommand
{
    public static Command Create()
    {
        var preset = new Option<string>("--preset") { Description = "Preset name", Required = true };
        var batch = new Option<int>("--batch") { Description = "Batch size", DefaultValueFactory = _ => 256 };
        var steps = new Option<int>("--steps") { Description = "Timed steps (after 2 warm-up steps)", DefaultValueFactory = _ => 8 };
        var device = new Option<string>("--device") { Description = "cpu | cuda", DefaultValueFactory = _ => "cpu" };
        var libtorch = new Option<string?>("--libtorch") { Description = "Folder of a CUDA libtorch" };
        var threads = new Option<int?>("--threads") { Description = "CPU threads (default: all cores)" };
        var augment = new Option<bool>("--augment") { Description = "Include the batched augmentation in the timed step" };
        var json = new Option<bool>("--json") { Description = "Print one JSON line (for bench/ scripts)" };
        var command = new Command("bench", "Time full MoCo v3 training steps on synthetic data")
        {
            preset, batch, steps, device, libtorch, threads, augment, json,
        };
        command.SetAction(r => CliErrors.Run(() =>
        {
            var result = StepBenchmark.Run(PresetCatalog.Get(r.GetValue(preset)!), r.GetValue(batch), r.GetValue(steps),
                device: r.GetValue(device)!, libtorch: r.GetValue(libtorch), threads: r.GetValue(threads), augment: r.GetValue(augment));
            if (r.GetValue(json))
            {
                Console.WriteLine(JsonSerializer.Serialize(result, ModelPreset.Json).ReplaceLineEndings(" "));
            }
            else
            {
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"{result.Preset} batch {result.Batch} on {result.Device}: {result.ImagesPerSecond:F1} img/s " +
                    $"(step median {result.StepSecondsMedian:F4}s, min {result.StepSecondsMin:F4}s, augmentation {result.AugmentSecondsMedian:F4}s), " +
                    $"peak RSS {result.PeakRssBytes / (1024.0 * 1024):F0} MiB"));
            }
            return 0;
        }));
        return command;
    }
}
