using MoCoV3.Inference;
using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using MoCoV3.Export;
using MoCoV3.Checkpoints;
using MoCoV3.Models;
using MoCoV3.Runtime;
using MoCoV3.Training;

namespace MoCoV3.Cli.Commands;

internal static class BenchCommand
{
    public static Command Create()
    {
        var preset = new Option<string?>("--preset") { Description = "Preset name (training-step benchmark)" };
        var onnx = new Option<string?>("--onnx") { Description = "Exported model: time ONNX Runtime CPU inference against TorchSharp eager for the same architecture" };
        var checkpoint = new Option<string?>("--checkpoint") { Description = "With --onnx: weights for the TorchSharp side (default: random weights of the ONNX file's preset; speed does not depend on them)" };
        var batch = new Option<int>("--batch") { Description = "Batch size", DefaultValueFactory = _ => 256 };
        var steps = new Option<int>("--steps") { Description = "Timed steps (after 2 warm-up steps)", DefaultValueFactory = _ => 8 };
        var device = new Option<string>("--device") { Description = "cpu | cuda", DefaultValueFactory = _ => "cpu" };
        var libtorch = new Option<string?>("--libtorch") { Description = "Folder of a CUDA libtorch" };
        var amp = AmpOption.Create();
        var threads = new Option<int?>("--threads") { Description = "CPU threads (default: all cores)" };
        var augment = new Option<bool>("--augment") { Description = "Include the batched augmentation in the timed step" };
        var data = new Option<string?>("--data")
        {
            Description = "Time the real training step instead: batches of this dataset (Fashion-MNIST folder, image folder or CSV) from the " +
                          "prefetching loader, augmented on the device; prints the share of time spent waiting for data",
        };
        var inputOnly = new Option<bool>("--input-only")
        {
            Description = "With --data: time the input pipeline alone (the loader decoding and cropping on its threads, then the colour " +
                          "augmentation on the device), without the model step; compare with bench/jpeg_dataloader_reference.py",
        };
        var batches = new Option<int>("--batches") { Description = "With --input-only: timed batches (after 1 warm-up batch)", DefaultValueFactory = _ => 8 };
        var perParameter = new Option<bool>("--per-parameter")
        {
            Description = "Momentum update and optimiser step looping over the parameters, as before they were packed into flat buffers (for comparison)",
        };
        var profile = new Option<bool>("--profile")
        {
            Description = "Also time the parts outside forward/backward alone: momentum update, zero_grad, optimiser step, gradient clipping",
        };
        var peakTflops = new Option<double?>("--peak-tflops")
        {
            Description = "The device's peak TFLOP/s for the precision used (e.g. 989 for H100/H200 dense bf16): prints the model FLOPs utilisation (ViT presets)",
        };
        var json = new Option<bool>("--json") { Description = "Print one JSON line (for bench/ scripts)" };
        var quantize = new Option<string>("--quantize") { Description = "With --onnx: none | int8 (also time the model quantised to int8-dynamic in memory)", DefaultValueFactory = _ => "none" };
        quantize.AcceptOnlyFromAmong("none", "int8");
        var command = new Command("bench", "Time full MoCo v3 training steps on synthetic data")
        {
            preset, onnx, checkpoint, batch, steps, device, libtorch, amp, threads, augment, data, inputOnly, batches, json, quantize,
            perParameter, profile, peakTflops,
        };
        command.SetAction(r => CliErrors.Run(() =>
        {
            if (r.GetValue(onnx) is string onnxPath)
                return BenchOnnx(onnxPath, r.GetValue(checkpoint), r.GetValue(batch), r.GetValue(steps), r.GetValue(threads), r.GetValue(quantize) == "int8");
            if (r.GetValue(preset) is not string presetName)
                throw new ArgumentException("bench needs --preset NAME (training step) or --onnx MODEL (inference)");
            var model = PresetCatalog.Get(presetName);
            var dataset = r.GetValue(data) is string dataPath
                ? Data.DatasetFactory.Open(Data.DatasetFactory.AutoKind, dataPath, model.Input.ImageSize, model.Input.Channels, train: true, resampleOnDevice: true)
                : null;
            if (r.GetValue(inputOnly))
                return BenchInput(model, dataset ?? throw new ArgumentException("--input-only needs --data FOLDER"), r.GetValue(batch),
                    r.GetValue(batches), r.GetValue(device)!, r.GetValue(libtorch), r.GetValue(threads), r.GetValue(json));
            var result = StepBenchmark.Run(model, r.GetValue(batch), r.GetValue(steps),
                device: r.GetValue(device)!, libtorch: r.GetValue(libtorch), threads: r.GetValue(threads), augment: r.GetValue(augment),
                amp: r.GetValue(amp) ? TorchSharp.torch.ScalarType.BFloat16 : null, data: dataset,
                perParameter: r.GetValue(perParameter), profile: r.GetValue(profile), peakTflops: r.GetValue(peakTflops));
            if (r.GetValue(json))
            {
                Console.WriteLine(JsonSerializer.Serialize(result, ModelPreset.Json).ReplaceLineEndings(" "));
            }
            else
            {
                string gpuMemory = result.PeakDeviceBytes is long gpu
                    ? string.Create(CultureInfo.InvariantCulture, $", peak GPU memory in use {gpu / (1024.0 * 1024):F0} MiB (cuMemGetInfo, includes the CUDA context)")
                    : "";
                string dataNote = dataset is null
                    ? ""
                    : string.Create(CultureInfo.InvariantCulture, $"; data from {result.Data}, {100 * result.DataWaitShare:F1}% of the time waiting for it");
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"{result.Preset} batch {result.Batch} {result.Amp} on {result.Device}: {result.ImagesPerSecond:F1} img/s " +
                    $"(step median {result.StepSecondsMedian:F4}s, min {result.StepSecondsMin:F4}s, augmentation {result.AugmentSecondsMedian:F4}s), " +
                    $"peak RSS {result.PeakRssBytes / (1024.0 * 1024):F0} MiB{gpuMemory}{dataNote}; {result.Update} update"));
                if (result.StepGflopsPerImage is double gflops)
                {
                    string mfuNote = result.Mfu is double mfu
                        ? string.Create(CultureInfo.InvariantCulture, $", MFU {100 * mfu:F1}% of {r.GetValue(peakTflops)} TFLOP/s")
                        : "";
                    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"model FLOPs {gflops:F1} GFLOP per image and step, {result.AchievedTflops:F2} TFLOP/s{mfuNote}"));
                }
                if (result.Profile is UpdateProfile p)
                    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"outside forward/backward ({result.Update}): momentum update {1e3 * p.MomentumUpdateSeconds:F2} ms, zero_grad {1e3 * p.ZeroGradSeconds:F2} ms, " +
                        $"optimiser step {1e3 * p.OptimizerStepSeconds:F2} ms, gradient clipping {1e3 * p.ClipSeconds:F2} ms " +
                        $"(clipping off by default); {100 * (p.TotalSeconds - p.ClipSeconds) / result.StepSecondsMedian:F1}% of the step without clipping"));
            }
            return 0;
        }));
        return command;
    }

    /// <summary>The input pipeline alone: loader (host decode and crops) and device colour augmentation.</summary>
    private static int BenchInput(ModelPreset preset, Data.IImageDataset dataset, int batch, int batches, string device, string? libtorch,
        int? threads, bool json)
    {
        var result = InputBenchmark.Run(preset, dataset, batch, batches, device, libtorch, threads);
        if (json)
        {
            Console.WriteLine(JsonSerializer.Serialize(result, ModelPreset.Json).ReplaceLineEndings(" "));
            return 0;
        }
        string crops = result.HostViews ? "decode + 2 crops on the host" : "read on the host, crops on the device";
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"input pipeline of {result.Preset} from {result.Data}, batch {result.Batch} x {result.Batches} on {result.Device}: " +
            $"{result.ImagesPerSecond:F1} img/s ({result.ImagesPerSecond / result.Cores:F1} per core of {result.Cores}), " +
            $"{100 * result.DataWaitShare:F1}% of the time waiting for data, colour augmentation {result.AugmentSecondsMedian:F3}s per batch; " +
            $"loader alone ({crops}) {result.HostImagesPerSecond:F1} img/s ({result.HostImagesPerSecond / result.Cores:F1} per core); " +
            $"peak RSS {result.PeakRssBytes / (1024.0 * 1024):F0} MiB"));
        return 0;
    }

    /// <summary>ONNX Runtime (default and tuned CPU session, optionally int8) against TorchSharp eager inference, same preset, batch and threads.</summary>
    private static int BenchOnnx(string onnxPath, string? checkpoint, int batch, int batches, int? threads, bool int8)
    {
        TorchRuntime.Initialize("cpu", threads: threads);
        ModelPreset preset;
        using (var runner = new OnnxModelRunner(onnxPath))
            preset = PresetCatalog.FromOnnxMetadata(runner.Metadata, onnxPath);   // validated, as a preset file is
        using var imported = checkpoint is null ? null : CheckpointImporter.Load(checkpoint, null, preset);
        using var random = imported is null ? BackboneFactory.Create(preset) : null;
        var backbone = imported?.Backbone ?? random!;
        var result = OnnxBenchmark.Run(onnxPath, backbone, preset, batch, batches, warmup: 1, threads, int8);
        Console.WriteLine($"{preset.Name} at {preset.Input.ImageSize}px, {result}");
        return 0;
    }
}
