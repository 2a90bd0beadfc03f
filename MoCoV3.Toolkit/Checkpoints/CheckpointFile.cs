using MoCoV3.IO;
using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using MoCoV3.Method;
using MoCoV3.Models;
using MoCoV3.Optim;

namespace MoCoV3.Checkpoints;

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
/// <para>
/// Layout (format 2; little-endian): <c>MOCOV3CK</c>, int32 version, int32 header length, the header's UTF-8 JSON, the
/// uint64 XxHash3 of all of that (the header section); then the tensors (<c>model.save</c>), a bool, the optimiser state
/// (the body), and the uint64 XxHash3 of the body as the file's last 8 bytes. Every reader checks what it reads:
/// <see cref="ReadHeader(string)"/> both checksums, <see cref="Load"/> both, hashing the body as it loads it, so a
/// damaged file is refused with an error that names it and the section. Format-1 files (no checksums) still load.
/// </para>
/// </summary>
public static class CheckpointFile
{
    private static readonly byte[] Magic = "MOCOV3CK"u8.ToArray();
    private const int FormatVersion = 2;
    /// <summary>The first format, without checksums: still read.</summary>
    private const int UncheckedVersion = 1;
    private const int MaxHeaderBytes = 1 << 20;
    private const int ChecksumBytes = sizeof(ulong);

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
            var hashing = new HashingStream(stream);
            using var writer = new BinaryWriter(hashing, Encoding.UTF8, leaveOpen: true);
            writer.Write(Magic);
            writer.Write(FormatVersion);
            byte[] json = JsonSerializer.SerializeToUtf8Bytes(header, ModelPreset.Json);
            writer.Write(json.Length);
            writer.Write(json);
            writer.Flush();
            WriteChecksum(hashing, hashing.TakeHash());
            model.save(writer);
            writer.Write(optimizer is not null);
            optimizer?.Save(writer);
            writer.Flush();
            WriteChecksum(hashing, hashing.TakeHash());
        });

    /// <summary>
    /// The header, after checking the whole file's checksums: one read of the file without building tensors, about
    /// 0.2 s for an 0.86 GB vit-base checkpoint on a 2-core VM (README § Benchmarks).
    /// </summary>
    public static CheckpointHeader ReadHeader(string path)
    {
        using var stream = OpenForRead(path);
        var hashing = new HashingStream(stream);
        using var reader = new BinaryReader(hashing, Encoding.UTF8, leaveOpen: true);
        var (header, version) = ReadHeader(path, reader, hashing);
        if (version >= FormatVersion)
        {
            long bodyStart = hashing.Position;
            hashing.Skip(stream.Length - ChecksumBytes - bodyStart);
            CheckBody(path, stream, hashing, bodyStart);
        }
        return header;
    }

    /// <summary>
    /// Loads weights (and optimiser state when given) into an already-built model of the same preset. The body's checksum
    /// is checked as it is read: when it fails, the model's weights are left undefined and an error names the file.
    /// </summary>
    public static CheckpointHeader Load(string path, MoCo model, ITrainingOptimizer? optimizer)
    {
        using var stream = OpenForRead(path);
        var hashing = new HashingStream(stream);
        using var reader = new BinaryReader(hashing, Encoding.UTF8, leaveOpen: true);
        var (header, version) = ReadHeader(path, reader, hashing);
        long bodyStart = hashing.Position;
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
            // A clobbered length or name fails the load before the checksum is reached: say that the file is damaged.
            if (version >= FormatVersion && BodyChecksumFails(stream, bodyStart) is { } corrupt)
                throw new InvalidDataException(Corrupt(path, "weights and optimiser state", bodyStart, corrupt.Actual, corrupt.Recorded) + $"; loading stopped at byte {hashing.Position}: {e.Message}", e);
            throw new InvalidDataException($"{path}: cannot load checkpoint tensors at byte {hashing.Position}: {e.Message}", e);
        }
        if (version >= FormatVersion)
        {
            // Without an optimiser the rest of the body is not loaded, but it is checked all the same.
            hashing.Skip(stream.Length - ChecksumBytes - hashing.Position);
            CheckBody(path, stream, hashing, bodyStart);
        }
        return header;
    }

    private static FileStream OpenForRead(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: checkpoint not found", path);
        return File.OpenRead(path);
    }

    private static (CheckpointHeader Header, int Version) ReadHeader(string path, BinaryReader reader, HashingStream hashing)
    {
        try
        {
            byte[] magic = reader.ReadBytes(Magic.Length);
            if (!magic.AsSpan().SequenceEqual(Magic))
                throw new InvalidDataException($"{path}: not a MoCoV3.NET checkpoint (bad magic at byte 0)");
            int version = reader.ReadInt32();
            if (version is not (UncheckedVersion or FormatVersion))
                throw new InvalidDataException($"{path}: checkpoint format version {version}, this toolkit reads {UncheckedVersion} and {FormatVersion}");
            long length = reader.ReadInt32();
            long trailer = version >= FormatVersion ? 2 * ChecksumBytes : 0;
            if (length <= 0 || length > MaxHeaderBytes || length > hashing.Length - hashing.Position - trailer)
                throw new InvalidDataException($"{path}: header length {length} at byte 12 is out of range");
            byte[] json = reader.ReadBytes((int)length);
            if (version >= FormatVersion)
            {
                ulong actual = hashing.TakeHash();
                ulong recorded = ReadChecksum(hashing);
                if (actual != recorded) throw new InvalidDataException(Corrupt(path, "header", 0, actual, recorded));
            }
            var header = JsonSerializer.Deserialize<CheckpointHeader>(json, ModelPreset.Json)
                ?? throw new InvalidDataException($"{path}: empty checkpoint header");
            if (header.Preset is null || header.Plan is null)
                throw new InvalidDataException($"{path}: checkpoint header without {(header.Preset is null ? "preset" : "plan")}");
            header.Preset.Validate(path);
            return (header, version);
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

    /// <summary>After the body went through <paramref name="hashing"/>: the file ends with the body's checksum, which matches.</summary>
    private static void CheckBody(string path, FileStream stream, HashingStream hashing, long bodyStart)
    {
        long end = hashing.Position;
        if (end != stream.Length - ChecksumBytes)
            throw new InvalidDataException($"{path}: checkpoint is corrupt: its body ends at byte {end}, but the file has {stream.Length} bytes (expected the end plus an {ChecksumBytes}-byte checksum)");
        ulong actual = hashing.TakeHash();
        ulong recorded;
        try
        {
            recorded = ReadChecksum(hashing);
        }
        catch (EndOfStreamException e)
        {
            throw new InvalidDataException($"{path}: truncated checkpoint: its checksum is missing", e);
        }
        if (actual != recorded) throw new InvalidDataException(Corrupt(path, "weights and optimiser state", bodyStart, actual, recorded));
    }

    /// <summary>The body's checksum, computed again from the file: null when it matches (or the file is too short to hold one).</summary>
    private static (ulong Actual, ulong Recorded)? BodyChecksumFails(FileStream stream, long bodyStart)
    {
        long end = stream.Length - ChecksumBytes;
        if (end < bodyStart) return null;
        stream.Seek(bodyStart, SeekOrigin.Begin);
        var hashing = new HashingStream(stream);
        hashing.Skip(end - bodyStart);
        ulong actual = hashing.TakeHash();
        ulong recorded = ReadChecksum(hashing);
        return actual == recorded ? null : (actual, recorded);
    }

    private static string Corrupt(string path, string section, long start, ulong actual, ulong recorded) =>
        $"{path}: checkpoint is corrupt: the {section} (from byte {start}) hash to XxHash3 {actual:x16}, the file records {recorded:x16} " +
        "(the file was damaged after it was written; use another copy or an earlier checkpoint)";

    private static void WriteChecksum(HashingStream stream, ulong checksum)
    {
        Span<byte> bytes = stackalloc byte[ChecksumBytes];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, checksum);
        stream.WriteUnhashed(bytes);
    }

    private static ulong ReadChecksum(HashingStream stream)
    {
        Span<byte> bytes = stackalloc byte[ChecksumBytes];
        stream.ReadExactlyUnhashed(bytes);
        return BinaryPrimitives.ReadUInt64LittleEndian(bytes);
    }
}
