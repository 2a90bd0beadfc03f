using System.Buffers.Binary;
using System.IO.Compression;
using System.IO.Hashing;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace MoCoV3.Tests.Fuzz;

/// <summary>
/// Mutations that get past a format's checksums or syntax so that they reach the reader's deeper checks: a JSON value
/// replaced by one of another type or size, PNG chunks whose CRCs are recomputed after the bytes change, gzip members
/// re-compressed after their content changes, the JSON header of a toolkit checkpoint (its length field and checksums
/// rewritten) or of a safetensors file (its length field rewritten).
/// </summary>
internal static class StructuredMutations
{
    private static readonly Func<JsonNode?>[] InterestingValues =
    [
        () => null, () => 0, () => -1, () => int.MaxValue, () => long.MaxValue, () => 1e308, () => -1e-308, () => 0.5,
        () => "", () => "vit", () => new string('x', 5000), () => true, () => new JsonArray(), () => new JsonObject(),
        () => new JsonArray(null, null), () => new JsonArray(1, 2, 3, 4, 5), () => new JsonArray(-1.0, 0.0),
    ];

    /// <summary>Replaces (or removes, or adds) one value anywhere in a JSON document.</summary>
    public static byte[] Json(byte[] json, Random random, List<string> log)
    {
        JsonNode? root;
        try
        {
            root = JsonNode.Parse(json, documentOptions: new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true });
        }
        catch (JsonException)
        {
            return FuzzMutator.Mutate(json, random, log);
        }
        var slots = new List<(JsonNode Parent, string? Key, int Index)>();
        Collect(root, slots);
        if (slots.Count == 0)
            return FuzzMutator.Mutate(json, random, log);
        var (parent, key, index) = slots[random.Next(slots.Count)];
        JsonNode? value = InterestingValues[random.Next(InterestingValues.Length)]();
        int action = random.Next(10);
        if (parent is JsonObject obj && key is not null)
        {
            if (action == 0)
            {
                obj.Remove(key);
                log.Add($"remove \"{key}\"");
            }
            else if (action == 1)
            {
                obj["extra_" + key] = value;
                log.Add($"add \"extra_{key}\"");
            }
            else
            {
                obj[key] = value;
                log.Add($"\"{key}\" := {value?.ToJsonString() ?? "null"}".Replace(new string('x', 5000), "x*5000", StringComparison.Ordinal));
            }
        }
        else if (parent is JsonArray array)
        {
            array[index] = value;
            log.Add($"[{index}] := {value?.ToJsonString() ?? "null"}");
        }
        byte[] mutated = Encoding.UTF8.GetBytes(root!.ToJsonString());
        return random.Next(4) == 0 ? FuzzMutator.Mutate(mutated, random, log) : mutated;
    }

    /// <summary>Byte mutations of a PNG, then every chunk's CRC made right again, so that libpng reads the changed data.</summary>
    public static byte[] PngWithValidCrcs(byte[] png, Random random, List<string> log)
    {
        byte[] data = FuzzMutator.Mutate(png, random, log);
        FixPngCrcs(data);
        log.Add("CRCs fixed");
        return data;
    }

    /// <summary>Recomputes the CRC of every PNG chunk whose length fits in the data.</summary>
    public static void FixPngCrcs(byte[] data)
    {
        int pos = 8;
        while (pos + 12 <= data.Length)
        {
            uint length = BinaryPrimitives.ReadUInt32BigEndian(data.AsSpan(pos));
            if (length > (uint)(data.Length - pos - 12))
                break;
            int crcAt = pos + 8 + (int)length;
            BinaryPrimitives.WriteUInt32BigEndian(data.AsSpan(crcAt), Crc32(data.AsSpan(pos + 4, 4 + (int)length)));
            pos = crcAt + 4;
        }
    }

    /// <summary>Byte mutations of the decompressed content, compressed again (a valid gzip member holding bad content).</summary>
    public static byte[] GzipContent(byte[] gzip, Random random, List<string> log)
    {
        using var input = new GZipStream(new MemoryStream(gzip), CompressionMode.Decompress);
        using var plain = new MemoryStream();
        input.CopyTo(plain);
        byte[] mutated = FuzzMutator.Mutate(plain.ToArray(), random, log);
        log.Add("re-gzipped");
        using var output = new MemoryStream();
        using (var compress = new GZipStream(output, CompressionLevel.Fastest))
            compress.Write(mutated);
        return output.ToArray();
    }

    /// <summary>
    /// A toolkit checkpoint (magic, version, int32 length, JSON header, its XxHash3, tensors, their XxHash3) with its
    /// header's JSON mutated and its header checksum made right again, so that the JSON reaches the parser.
    /// </summary>
    public static byte[] CheckpointHeader(byte[] checkpoint, Random random, List<string> log)
    {
        const int lengthAt = 12;
        int length = BinaryPrimitives.ReadInt32LittleEndian(checkpoint.AsSpan(lengthAt));
        byte[] header = Json(checkpoint.AsSpan(lengthAt + 4, length).ToArray(), random, log);
        var result = new byte[lengthAt + 4 + header.Length + checkpoint.Length - (lengthAt + 4 + length)];
        checkpoint.AsSpan(0, lengthAt).CopyTo(result);
        BinaryPrimitives.WriteInt32LittleEndian(result.AsSpan(lengthAt), header.Length);
        header.CopyTo(result, lengthAt + 4);
        checkpoint.AsSpan(lengthAt + 4 + length).CopyTo(result.AsSpan(lengthAt + 4 + header.Length));
        FixCheckpointChecksums(result);
        log.Add("header checksum fixed");
        return result;
    }

    /// <summary>A safetensors file (u64 length, JSON header, data) with its header's JSON mutated and the length field rewritten.</summary>
    public static byte[] SafeTensorsHeader(byte[] file, Random random, List<string> log)
    {
        int length = (int)BinaryPrimitives.ReadUInt64LittleEndian(file);
        byte[] header = Json(file.AsSpan(8, length).ToArray(), random, log);
        var result = new byte[8 + header.Length + file.Length - (8 + length)];
        BinaryPrimitives.WriteUInt64LittleEndian(result, (ulong)header.Length);
        header.CopyTo(result, 8);
        file.AsSpan(8 + length).CopyTo(result.AsSpan(8 + header.Length));
        return result;
    }

    /// <summary>Byte mutations of a toolkit checkpoint, then both checksums made right again, so that the tensors reach TorchSharp.</summary>
    public static byte[] CheckpointWithValidChecksums(byte[] checkpoint, Random random, List<string> log)
    {
        byte[] data = FuzzMutator.Mutate(checkpoint, random, log);
        FixCheckpointChecksums(data, body: true);
        log.Add("checksums fixed");
        return data;
    }

    /// <summary>Recomputes a format-2 checkpoint's header checksum (and the body's) where the header length fits in the data.</summary>
    public static void FixCheckpointChecksums(byte[] data, bool body = false)
    {
        if (data.Length < 16 || BinaryPrimitives.ReadInt32LittleEndian(data.AsSpan(8)) != 2) return;
        int length = BinaryPrimitives.ReadInt32LittleEndian(data.AsSpan(12));
        if (length < 0 || length > data.Length - 32) return;
        int headerEnd = 16 + length;
        BinaryPrimitives.WriteUInt64LittleEndian(data.AsSpan(headerEnd), XxHash3.HashToUInt64(data.AsSpan(0, headerEnd)));
        if (body)
            BinaryPrimitives.WriteUInt64LittleEndian(data.AsSpan(data.Length - 8), XxHash3.HashToUInt64(data.AsSpan(headerEnd + 8, data.Length - 16 - headerEnd)));
    }

    private static void Collect(JsonNode? node, List<(JsonNode Parent, string? Key, int Index)> slots)
    {
        switch (node)
        {
            case JsonObject obj:
                foreach (var (key, child) in obj.ToList())
                {
                    slots.Add((obj, key, -1));
                    Collect(child, slots);
                }
                break;
            case JsonArray array:
                for (int i = 0; i < array.Count; i++)
                {
                    slots.Add((array, null, i));
                    Collect(array[i], slots);
                }
                break;
        }
    }

    private static uint Crc32(ReadOnlySpan<byte> bytes)
    {
        uint crc = 0xFFFFFFFF;
        foreach (byte b in bytes)
        {
            crc ^= b;
            for (int k = 0; k < 8; k++)
                crc = (crc & 1) != 0 ? (crc >> 1) ^ 0xEDB88320 : crc >> 1;
        }
        return ~crc;
    }
}
