using System.Buffers.Binary;
using System.IO.Hashing;
using System.Text;
using MoCoV3.Checkpoints;
using MoCoV3.Method;
using MoCoV3.Models;
using MoCoV3.Optim;
using MoCoV3.Tests.Import;
using MoCoV3.Training;
using static TorchSharp.torch;

namespace MoCoV3.Tests.Integrity;

/// <summary>
/// Toolkit checkpoints (format 2) carry an XxHash3 of the header section and one of the body; loading and reading the
/// header refuse a damaged file by name, and format-1 files (no checksums) still load.
/// </summary>
[TestClass]
public sealed class CheckpointIntegrityTests
{
    private static readonly ModelPreset Preset = TestPresets.MicroVit;

    private static (string Path, float[] Weights) Saved(string name, long seed)
    {
        manual_seed(seed);
        using var model = new MoCo(Preset, BackboneFactory.Create);
        using var optimizer = new AdamWOptimizer(model.TrainableParameters(), 1e-3, 0.1);
        using (NewDisposeScope())
        {
            using var x = rand(2, Preset.Input.Channels, Preset.Input.ImageSize, Preset.Input.ImageSize);
            model.forward(x, x, 0.99).backward();
            optimizer.Step();
        }
        string path = ImportTestFiles.TempFile(name);
        var plan = new RunPlan { Batch = 2, StepsPerEpoch = 1, TotalSteps = 1, PeakLr = 1e-3, WarmupEpochs = 0, Seed = 4 };
        CheckpointFile.Save(path, new CheckpointHeader { Preset = Preset, Plan = plan, Step = 1, ElapsedSeconds = 1 }, model, optimizer);
        return (path, Weights(model));
    }

    private static float[] Weights(MoCo model) => model.BaseEncoder.Backbone.state_dict()["blocks.0.attn.qkv.weight"].data<float>().ToArray();

    private static CheckpointHeader LoadInto(string path, out float[] weights)
    {
        using var model = new MoCo(Preset, BackboneFactory.Create);
        using var optimizer = new AdamWOptimizer(model.TrainableParameters(), 1e-3, 0.1);
        var header = CheckpointFile.Load(path, model, optimizer);
        weights = Weights(model);
        return header;
    }

    [TestMethod]
    public void Checksums_AreTheXxHash3OfTheHeaderAndOfTheBody()
    {
        var (path, _) = Saved("sums.ckpt", 81);
        byte[] file = File.ReadAllBytes(path);
        Assert.AreEqual(2, BinaryPrimitives.ReadInt32LittleEndian(file.AsSpan(8)), "format version");
        int headerEnd = 16 + BinaryPrimitives.ReadInt32LittleEndian(file.AsSpan(12));
        Assert.AreEqual(XxHash3.HashToUInt64(file.AsSpan(0, headerEnd)), BinaryPrimitives.ReadUInt64LittleEndian(file.AsSpan(headerEnd)));
        int bodyStart = headerEnd + 8;
        Assert.AreEqual(XxHash3.HashToUInt64(file.AsSpan(bodyStart, file.Length - 8 - bodyStart)), BinaryPrimitives.ReadUInt64LittleEndian(file.AsSpan(file.Length - 8)));
    }

    [TestMethod]
    public void FlippedBytesInTheTensors_AreRefusedByLoadAndReadHeader()
    {
        var (path, weights) = Saved("flipped.ckpt", 82);
        var header = LoadInto(path, out float[] loaded);
        CollectionAssert.AreEqual(weights, loaded, "the intact file loads the weights saved");
        Assert.AreEqual(1, header.Step);

        int at = CorruptBytes.Find(File.ReadAllBytes(path), weights.Take(16).SelectMany(BitConverter.GetBytes).ToArray());
        CorruptBytes.Flip(path, at + 4, 16); // inside a tensor: the load itself would succeed
        var e = Assert.ThrowsExactly<InvalidDataException>(() => LoadInto(path, out _));
        StringAssert.StartsWith(e.Message, $"{path}: checkpoint is corrupt: the weights and optimiser state (from byte ");
        StringAssert.Contains(e.Message, "hash to XxHash3 ");
        e = Assert.ThrowsExactly<InvalidDataException>(() => CheckpointFile.ReadHeader(path));
        StringAssert.StartsWith(e.Message, $"{path}: checkpoint is corrupt: the weights and optimiser state");
        // What export and convert read it through (the issue's damaged checkpoints were exported without a word).
        e = Assert.ThrowsExactly<InvalidDataException>(() => CheckpointImporter.Load(path, CheckpointFormat.Toolkit, Preset).Dispose());
        StringAssert.StartsWith(e.Message, $"{path}: checkpoint is corrupt: the weights and optimiser state");
    }

    [TestMethod]
    public void AClobberedLengthInTheBody_IsReportedAsCorruption()
    {
        var (path, _) = Saved("clobbered.ckpt", 83);
        byte[] file = File.ReadAllBytes(path);
        // TorchSharp writes each parameter's name as a length-prefixed string: overwrite the 8 bytes before one.
        int at = CorruptBytes.Find(file, "base_encoder.backbone.blocks.0.attn.qkv.weight"u8);
        CorruptBytes.Flip(path, at - 8, 8);
        var e = Assert.ThrowsExactly<InvalidDataException>(() => LoadInto(path, out _));
        StringAssert.StartsWith(e.Message, $"{path}: checkpoint is corrupt: the weights and optimiser state");
    }

    [TestMethod]
    public void AFlippedByteInTheHeader_IsRefusedBeforeItIsParsed()
    {
        var (path, _) = Saved("header.ckpt", 84);
        int at = CorruptBytes.Find(File.ReadAllBytes(path), Encoding.UTF8.GetBytes($"\"{Preset.Name}\""));
        CorruptBytes.Flip(path, at + 1, 1);
        var e = Assert.ThrowsExactly<InvalidDataException>(() => CheckpointFile.ReadHeader(path));
        StringAssert.Matches(e.Message, new System.Text.RegularExpressions.Regex(
            "^" + System.Text.RegularExpressions.Regex.Escape(path) + @": checkpoint is corrupt: the header \(from byte 0\) hash to XxHash3 [0-9a-f]{16}, the file records [0-9a-f]{16}"));
        e = Assert.ThrowsExactly<InvalidDataException>(() => LoadInto(path, out _));
        StringAssert.StartsWith(e.Message, $"{path}: checkpoint is corrupt: the header");
    }

    [TestMethod]
    public void ATruncatedChecksum_IsRefused()
    {
        var (path, _) = Saved("truncated.ckpt", 85);
        byte[] file = File.ReadAllBytes(path);
        File.WriteAllBytes(path, file[..^3]);
        var e = Assert.ThrowsExactly<InvalidDataException>(() => CheckpointFile.ReadHeader(path));
        StringAssert.StartsWith(e.Message, path + ": ");
        e = Assert.ThrowsExactly<InvalidDataException>(() => LoadInto(path, out _));
        StringAssert.StartsWith(e.Message, path + ": ");
    }

    [TestMethod]
    public void AFormat1Checkpoint_WithoutChecksums_StillLoads()
    {
        var (path, weights) = Saved("v2.ckpt", 86);
        byte[] v2 = File.ReadAllBytes(path);
        int headerEnd = 16 + BinaryPrimitives.ReadInt32LittleEndian(v2.AsSpan(12));
        // Format 1: the same bytes without the two checksums.
        byte[] v1 = [.. v2.AsSpan(0, headerEnd), .. v2.AsSpan(headerEnd + 8, v2.Length - 8 - headerEnd - 8)];
        BinaryPrimitives.WriteInt32LittleEndian(v1.AsSpan(8), 1);
        string old = ImportTestFiles.TempFile("v1.ckpt");
        File.WriteAllBytes(old, v1);
        Assert.AreEqual(Preset.Name, CheckpointFile.ReadHeader(old).Preset.Name);
        Assert.AreEqual(1, LoadInto(old, out float[] loaded).Step);
        CollectionAssert.AreEqual(weights, loaded);
    }
}
