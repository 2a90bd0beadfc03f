using MoCoV3.IO;
using System.Text;
using System.Text.Json;
using MoCoV3.Method;
using MoCoV3.Models;
using MoCoV3.Optim;

namespace MoCoV3.Training;

/// <summary>What a checkpoint says about itself, before the tensors.</summary>
public sealed record CheckpointHeader
{
    public required ModelPreset Preset { get; init; }
    public required RunPlan Plan { get; init; }
    /// <summary>Optimiser steps taken so far; the next step to run.</summary>
    public required long Step { get; init; }
    public required double ElapsedSeconds { get; init; }
    /// <summary>
    /// Factor on the scheduled learning rate: 1, halved by each <c>--on-nan rollback</c>, so a resumed run keeps it.
    /// Checkpoints written before it existed read as 1.
    /// </summary>
    public double LrScale { get; init; } = 1;
    public string Toolkit { get; init; } = typeof(CheckpointFile).Assembly.GetName().Version?.ToString() ?? "";
    public DateTimeOffset Saved { get; init; } = DateTimeOffset.UtcNow;
}

/// <summary>
/// A pretraining checkpoint of this toolkit: the header (JSON), both encoders and the predictor
/// (TorchSharp's module format), and the optimiser state, in one file. Written through <see cref="DurableFile"/>: the bytes
/// go to a temporary file that is flushed to disk and then renamed over the old checkpoint, so a crash at any point
/// leaves either the old or the new checkpoint, never a partial one, and a failed write leaves the old one untouched.
/// </summary>
public static class CheckpointFile
{
    private static readonly byte[] Magic = "MOCOV3CK"u8.ToArray();
    private const int FormatVersion = 1;
    private const int MaxHeaderBytes = 1 << 20;

    public const string DefaultName = "checkpoint.ckpt";

    /// <summary>Whether <paramref name="head"/> (a file's first bytes) starts a checkpoint of this toolkit.</summary>
    public static bool HasMagic(ReadOnlySpan<byte> head) => head.StartsWith(Magic);

    /// <summary>Whether the file at <paramref name="path"/> is a checkpoint of this toolkit (by its magic bytes).</summary>
    public static bool IsCheckpoint(string path)
    {
        Span<byte> head = stackalloc byte[8];
        using var stream = File.OpenRead(path);
        return HasMagic(head[..stream.ReadAtLeast(head, head.Length, throwOnEndOfStream: false)]);
    }

    public static void Save(string path, CheckpointHeader header, MoCo model, ITrainingOptimizer? optimizer) =>
        DurableFile.Write(path, stream =>
        {
            using var writer = new BinaryWriter(stream, Encoding.UTF8, leaveOpen: true);
            writer.Write(Magic);
            writer.Write(FormatVersion);
            byte[] json = JsonSerializer.SerializeToUtf8Bytes(header, ModelPreset.Json);
            writer.Write(json.Length);
            writer.Write(json);
            model.save(writer);
            writer.Write(optimizer is not null);
            optimizer?.Save(writer);
            writer.Flush();
        });

    public static CheckpointHeader ReadHeader(string path)
    {
        using var stream = OpenForRead(path);
        using var reader = new BinaryReader(stream, Encoding.UTF8);
        return ReadHeader(path, reader);
    }

    /// <summary>Loads weights (and optimiser state when given) into an already-built model of the same preset.</summary>
    public static CheckpointHeader Load(string path, MoCo model, ITrainingOptimizer? optimizer)
    {
        using var stream = OpenForRead(path);
        using var reader = new BinaryReader(stream, Encoding.UTF8);
        var header = ReadHeader(path, reader);
        try
        {
            model.load(reader, strict: true);
            bool hasOptimizer = reader.ReadBoolean();
            if (optimizer is not null)
            {
                if (!hasOptimizer) throw new InvalidDataException("it holds no optimiser state");
                optimizer.Load(reader);
            }
        }
        catch (Exception e) when (e is EndOfStreamException or ArgumentException or InvalidDataException or IOException or FormatException)
        {
            throw new InvalidDataException($"{path}: cannot load checkpoint tensors at byte {stream.Position}: {e.Message}", e);
        }
        return header;
    }

    private static FileStream OpenForRead(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: checkpoint not found", path);
        return File.OpenRead(path);
    }

    private static CheckpointHeader ReadHeader(string path, BinaryReader reader)
    {
        try
        {
            byte[] magic = reader.ReadBytes(Magic.Length);
            if (!magic.AsSpan().SequenceEqual(Magic))
                throw new InvalidDataException($"{path}: not a MoCoV3.NET checkpoint (bad magic at byte 0)");
            int version = reader.ReadInt32();
            if (version != FormatVersion)
                throw new InvalidDataException($"{path}: checkpoint format version {version}, this toolkit reads {FormatVersion}");
            int length = reader.ReadInt32();
            if (length <= 0 || length > MaxHeaderBytes || length > reader.BaseStream.Length - reader.BaseStream.Position)
                throw new InvalidDataException($"{path}: header length {length} at byte 12 is out of range");
            var header = JsonSerializer.Deserialize<CheckpointHeader>(reader.ReadBytes(length), ModelPreset.Json)
                ?? throw new InvalidDataException($"{path}: empty checkpoint header");
            if (header.Preset is null || header.Plan is null)
                throw new InvalidDataException($"{path}: checkpoint header without {(header.Preset is null ? "preset" : "plan")}");
            header.Preset.Validate(path);
            return header;
        }
        catch (EndOfStreamException e)
        {
            throw new InvalidDataException($"{path}: truncated checkpoint header", e);
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{path}: corrupt checkpoint header: {e.Message}", e);
        }
    }
}
