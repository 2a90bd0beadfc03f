// ReadBench: the time to read vit-base files, for the cost of their checksums (bench/integrity.sh).
//   ReadBench make DIR              writes DIR/vit-b-300ep.pth.tar (official layout: base and momentum encoders and predictor,
//                                   entries stored as torch.save stores them), DIR/vit-b.ckpt (toolkit checkpoint, no
//                                   optimiser state), DIR/vit-b-v1.ckpt (the same without checksums) and DIR/vit-b.onnx
//   ReadBench read RUNS FILE...     reads each file RUNS times and prints the median and every time
//   ReadBench hash FILE...          the checksums alone: CRC-32 and XxHash3 of each file's bytes in memory (best of 5)
using System.Buffers.Binary;
using System.Collections;
using System.Diagnostics;
using System.Globalization;
using System.IO.Compression;
using System.Text.RegularExpressions;
using MoCoV3.Checkpoints;
using MoCoV3.Export;
using MoCoV3.Inference;
using MoCoV3.Method;
using MoCoV3.Models;
using MoCoV3.Training;
using static TorchSharp.torch;

var preset = PresetCatalog.Get("vit-base");
if (args is ["make", var dir])
{
    Directory.CreateDirectory(dir);
    manual_seed(1);
    using var moco = new MoCo(preset, BackboneFactory.Create);
    var state = new Hashtable();
    foreach (var (key, value) in moco.state_dict())
    {
        string name = Regex.Replace(key, @"^(base_encoder|momentum_encoder)\.backbone\.", "$1.");
        state["module." + Regex.Replace(name, @"^(base_encoder|momentum_encoder)\.projector\.", "$1.head.")] = value;
    }
    string official = Path.Combine(dir, "vit-b-300ep.pth.tar");
    PyTorchFile.Write(official, new Hashtable { ["state_dict"] = state, ["epoch"] = 300, ["arch"] = "vit_base" });
    Stored(official);
    string checkpoint = Path.Combine(dir, "vit-b.ckpt");
    var plan = new RunPlan { Batch = 4096, StepsPerEpoch = 1, TotalSteps = 0, PeakLr = 0, WarmupEpochs = 0, Seed = 1 };
    CheckpointFile.Save(checkpoint, new CheckpointHeader { Preset = preset, Plan = plan, Step = 0, ElapsedSeconds = 0 }, moco, optimizer: null);
    File.WriteAllBytes(Path.Combine(dir, "vit-b-v1.ckpt"), WithoutChecksums(File.ReadAllBytes(checkpoint)));
    OnnxExporter.ExportToFile(moco.BaseEncoder.Backbone, preset, new ExportOptions(), Path.Combine(dir, "vit-b.onnx"));
    foreach (var file in Directory.EnumerateFiles(dir).Order())
        Console.WriteLine($"{file}: {new FileInfo(file).Length / 1e6:F0} MB");
    return 0;
}
if (args is ["read", var runsText, .. var files] && int.TryParse(runsText, out int runs) && files.Length > 0)
{
    using var moco = new MoCo(preset, BackboneFactory.Create);
    foreach (string file in files)
    {
        Action read = Path.GetExtension(file) switch
        {
            ".ckpt" => () => CheckpointFile.Load(file, moco, optimizer: null),
            ".onnx" => () => new OnnxModelRunner(file).Dispose(),
            _ => () =>
            {
                using var scope = NewDisposeScope(); // the tensors read
                PyTorchFile.Read(file);
            },
        };
        read(); // warm: the file in the page cache, code jitted
        var seconds = new List<double>();
        for (int i = 0; i < runs; i++)
        {
            GC.Collect();
            var clock = Stopwatch.StartNew();
            read();
            seconds.Add(clock.Elapsed.TotalSeconds);
        }
        var sorted = seconds.Order().ToList();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{Path.GetFileName(file)}: median {sorted[sorted.Count / 2]:F3} s, best {sorted[0]:F3} s over {runs} runs ({string.Join(", ", seconds.Select(s => s.ToString("F3", CultureInfo.InvariantCulture)))})"));
        if (Path.GetExtension(file) == ".ckpt")
        {
            var header = new List<double>();
            for (int i = 0; i < runs; i++)
            {
                var clock = Stopwatch.StartNew();
                CheckpointFile.ReadHeader(file);
                header.Add(clock.Elapsed.TotalSeconds);
            }
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{Path.GetFileName(file)} ReadHeader: median {header.Order().ElementAt(runs / 2):F3} s"));
        }
    }
    return 0;
}
if (args is ["hash", .. var hashed] && hashed.Length > 0)
{
    // The work the checks add, alone: CRC-32 (zip entries) and XxHash3 (checkpoints, models) over the file's bytes in memory.
    foreach (string file in hashed)
    {
        byte[] bytes = File.ReadAllBytes(file);
        double Best(Action hash) => Enumerable.Range(0, 5).Min(_ => { var clock = Stopwatch.StartNew(); hash(); return clock.Elapsed.TotalSeconds; });
        double crc = Best(() => System.IO.Hashing.Crc32.HashToUInt32(bytes));
        double xxh3 = Best(() => System.IO.Hashing.XxHash3.HashToUInt64(bytes));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{Path.GetFileName(file)}: {bytes.Length / 1e6:F0} MB, CRC-32 {crc:F3} s ({bytes.Length / crc / 1e9:F1} GB/s), XxHash3 {xxh3:F3} s ({bytes.Length / xxh3 / 1e9:F1} GB/s)"));
    }
    return 0;
}
Console.Error.WriteLine("usage: ReadBench make DIR | ReadBench read RUNS FILE... | ReadBench hash FILE...");
return 1;

// torch.save stores its entries; PyBridge deflates them.
static void Stored(string path)
{
    var entries = new List<(string, byte[])>();
    using (var archive = ZipFile.OpenRead(path))
        foreach (var entry in archive.Entries)
        {
            using var input = entry.Open();
            using var bytes = new MemoryStream();
            input.CopyTo(bytes);
            entries.Add((entry.FullName, bytes.ToArray()));
        }
    File.Delete(path);
    using var output = ZipFile.Open(path, ZipArchiveMode.Create);
    foreach (var (name, bytes) in entries)
    {
        using var stream = output.CreateEntry(name, CompressionLevel.NoCompression).Open();
        stream.Write(bytes);
    }
}

// Format 1: the same bytes without the header's and the body's checksums, version 1.
static byte[] WithoutChecksums(byte[] v2)
{
    int headerEnd = 16 + BinaryPrimitives.ReadInt32LittleEndian(v2.AsSpan(12));
    byte[] v1 = [.. v2.AsSpan(0, headerEnd), .. v2.AsSpan(headerEnd + 8, v2.Length - 16 - headerEnd)];
    BinaryPrimitives.WriteInt32LittleEndian(v1.AsSpan(8), 1);
    return v1;
}
