using System.IO.Compression;
using MoCoV3.Checkpoints;
using MoCoV3.Method;
using MoCoV3.Models;
using MoCoV3.Optim;
using MoCoV3.Tests.Data;
using MoCoV3.Tests.Import;
using MoCoV3.Training;
using static TorchSharp.torch;

namespace MoCoV3.Tests.Fuzz;

/// <summary>
/// Fuzzes the checkpoint readers: <c>torch.save</c> and <c>.safetensors</c> files (official, MMSelfSup and timm layouts,
/// through the importer) and
/// the toolkit's own <c>.ckpt</c> (header, tensors and optimiser state). Every case loads or is refused with an
/// <see cref="InvalidDataException"/> naming the file.
/// </summary>
[TestClass]
public sealed class CheckpointFuzzTests
{
    private const int CiCases = 300;

    [TestMethod]
    public void PyTorchFilesImportOrAreRefusedWithTheFile()
    {
        using var dir = new TempDir();
        ModelPreset preset = TestPresets.MicroVit;
        byte[] official, mmselfsup;
        using (MoCo source = ImportTestFiles.SourceMoCo(preset, 3))
        {
            official = File.ReadAllBytes(ImportTestFiles.Official(source, vit: true));
            mmselfsup = File.ReadAllBytes(ImportTestFiles.MMSelfSup(source));
        }
        FuzzSeed[] seeds =
        [
            new("vit-s-300ep.pth.tar", official),
            new("mocov3_vit-small-p16_300e.pth", mmselfsup),
            new("member-vit-s-300ep.pth.tar", official, MutateMember),
            new("member-mocov3_vit-small-p16_300e.pth", mmselfsup, MutateMember),
        ];
        FuzzHarness.Run(".pth", dir.Path, seeds, path =>
        {
            using var imported = CheckpointImporter.Load(path, format: null, arch: null, presets: [preset]);
            Assert.IsTrue(imported.Report.Loaded.Count > 0, "an import that loaded nothing");
        }, CiCases, typeof(InvalidDataException)).AssertNoFailures();
    }

    [TestMethod]
    public void SafeTensorsFilesImportOrAreRefusedWithTheFile()
    {
        using var dir = new TempDir();
        ModelPreset preset = TestPresets.MicroVit;
        string official;
        using (MoCo source = ImportTestFiles.SourceMoCo(preset, 5))
            official = SafeTensorsImportTests.AsSafeTensors(ImportTestFiles.Official(source, vit: true), "official.safetensors");
        // convert --to safetensors: timm names and the preset in __metadata__ (the importer then builds that preset).
        string timm = dir.File("hf.safetensors");
        CheckpointConverter.ConvertToSafeTensors(official, null, preset, timm);
        byte[] own = File.ReadAllBytes(timm), foreign = File.ReadAllBytes(official);
        FuzzSeed[] seeds =
        [
            new("model.safetensors", own),
            new("official.safetensors", foreign),
            new("header-model.safetensors", own, StructuredMutations.SafeTensorsHeader),
            new("header-official.safetensors", foreign, StructuredMutations.SafeTensorsHeader),
        ];
        FuzzHarness.Run(".safetensors", dir.Path, seeds, path =>
        {
            using var imported = CheckpointImporter.Load(path, format: null, arch: null, presets: [preset]);
            Assert.IsTrue(imported.Report.Loaded.Count > 0, "an import that loaded nothing");
        }, CiCases, typeof(InvalidDataException)).AssertNoFailures();
    }

    [TestMethod]
    public void ToolkitCheckpointsLoadOrAreRefusedWithTheFile()
    {
        using var dir = new TempDir();
        ModelPreset preset = TestPresets.MicroVit;
        manual_seed(4);
        using var model = new MoCo(preset, BackboneFactory.Create);
        using var optimizer = new AdamWOptimizer(model.TrainableParameters(), 1e-3, 0.1);
        using (var scope = NewDisposeScope())
        {
            // One step, so that the optimiser state has its moments.
            using var x = rand(2, preset.Input.Channels, preset.Input.ImageSize, preset.Input.ImageSize);
            model.forward(x, x, 0.99).backward();
            optimizer.Step();
        }
        var plan = new RunPlan { Batch = 2, StepsPerEpoch = 1, TotalSteps = 1, PeakLr = 1e-3, WarmupEpochs = 0, Seed = 4 };
        string seedPath = dir.File("seed.ckpt");
        CheckpointFile.Save(seedPath, new CheckpointHeader { Preset = preset, Plan = plan, Step = 1, ElapsedSeconds = 1 }, model, optimizer);
        byte[] checkpoint = File.ReadAllBytes(seedPath);
        // Plain byte mutations stop at a checksum; the other two seeds fix the checksums so that the JSON and the tensors are read.
        FuzzSeed[] seeds =
        [
            new("checkpoint.ckpt", checkpoint),
            new("header-checkpoint.ckpt", checkpoint, StructuredMutations.CheckpointHeader),
            new("body-checkpoint.ckpt", checkpoint, StructuredMutations.CheckpointWithValidChecksums),
        ];
        FuzzHarness.Run(".ckpt", dir.Path, seeds, path =>
        {
            CheckpointFile.ReadHeader(path);
            CheckpointHeader header = CheckpointFile.Load(path, model, optimizer);
            Assert.IsNotNull(header.Preset, "a header without a preset");
            Assert.IsNotNull(header.Plan, "a header without a plan");
        }, CiCases * 3 / 2, typeof(InvalidDataException)).AssertNoFailures(); // three seeds: as many cases per seed as with two
    }

    /// <summary>Mutates one member of the zip (data.pkl half of the time) and re-packs it with valid checksums.</summary>
    private static byte[] MutateMember(byte[] zip, Random random, List<string> log)
    {
        var members = new List<(string Name, byte[] Bytes)>();
        using (var archive = new ZipArchive(new MemoryStream(zip), ZipArchiveMode.Read))
        {
            foreach (ZipArchiveEntry entry in archive.Entries)
            {
                using var stream = entry.Open();
                using var copy = new MemoryStream();
                stream.CopyTo(copy);
                members.Add((entry.FullName, copy.ToArray()));
            }
        }
        int pickle = members.FindIndex(m => m.Name.EndsWith("data.pkl", StringComparison.Ordinal));
        int target = random.Next(2) == 0 ? pickle : random.Next(members.Count);
        log.Add($"member {members[target].Name}:");
        members[target] = (members[target].Name, FuzzMutator.Mutate(members[target].Bytes, random, log));

        using var output = new MemoryStream();
        using (var archive = new ZipArchive(output, ZipArchiveMode.Create, leaveOpen: true))
        {
            foreach (var (name, bytes) in members)
            {
                using var stream = archive.CreateEntry(name, CompressionLevel.NoCompression).Open();
                stream.Write(bytes);
            }
        }
        return output.ToArray();
    }
}
