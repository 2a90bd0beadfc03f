using System.Globalization;
using System.Text.Json;
using Google.Protobuf;
using MoCoV3.IO;
using Onnx;

namespace MoCoV3.Inference;

/// <summary>
/// The checksum of an exported model, in its <c>metadata_props</c> under <see cref="OnnxMetadata.Digest"/>:
/// <c>{"xxh3":"…","initializers":{"name":"…",…}}</c>, 64-bit XxHash3 values in hex. <c>xxh3</c> hashes the model's
/// protobuf serialization without the digest entry, followed by the external-data bytes of every initializer that keeps
/// its data outside the model, in graph order, so that no byte of the graph, its metadata or its weights changes
/// unnoticed. Each initializer's value (its serialized TensorProto, then its external bytes) only serves to name the
/// tensors that changed when <c>xxh3</c> does not match. Written by the exporter (and for every model it saves, the
/// quantised ones included), checked by <see cref="OnnxModelFile"/> before ONNX Runtime loads a model; a model without
/// the entry (another tool's, or an export older than the digest) loads as before.
/// </summary>
internal static class OnnxDigest
{
    private const string WholeKey = "xxh3";
    private const string InitializersKey = "initializers";

    /// <summary>A copy of <paramref name="model"/> carrying a digest of its content (an old digest is replaced).</summary>
    /// <param name="folder">Where the model's external data lives; null when it has none.</param>
    public static ModelProto Seal(ModelProto model, string? folder)
    {
        ArgumentNullException.ThrowIfNull(model);
        var copy = Without(model);
        var initializers = new SortedDictionary<string, string>(StringComparer.Ordinal);
        foreach (var tensor in copy.Graph?.Initializer ?? [])
            initializers[tensor.Name] = Hex(TensorHash(tensor, folder, "(model being saved)"));
        string value = JsonSerializer.Serialize(new Dictionary<string, object>
        {
            [WholeKey] = Hex(ModelHash(copy, folder, "(model being saved)")),
            [InitializersKey] = initializers,
        });
        copy.MetadataProps.Add(new StringStringEntryProto { Key = OnnxMetadata.Digest, Value = value });
        return copy;
    }

    /// <summary>Removes the digest entries of <paramref name="model"/> (in place), for a model that is being changed.</summary>
    public static void Remove(ModelProto model)
    {
        for (int i = model.MetadataProps.Count - 1; i >= 0; i--)
            if (model.MetadataProps[i].Key == OnnxMetadata.Digest) model.MetadataProps.RemoveAt(i);
    }

    /// <summary>
    /// Checks the digest of a model that <see cref="OnnxModelFile"/> has parsed and checked (its external data is inside
    /// <paramref name="folder"/> and the data file); nothing to do when it has none.
    /// </summary>
    /// <exception cref="InvalidDataException">The content does not match the digest, or the digest is malformed; the
    /// message names <paramref name="source"/> and, when they differ, the initializers.</exception>
    public static void Verify(string source, ModelProto model, string? folder)
    {
        var entries = model.MetadataProps.Where(p => p.Key == OnnxMetadata.Digest).ToList();
        if (entries.Count == 0) return;
        if (entries.Count > 1)
            throw new InvalidDataException($"{source}: ONNX model is corrupt: it holds {entries.Count} {OnnxMetadata.Digest} metadata entries, an export writes one");
        var (whole, initializers) = Parse(source, entries[0].Value);
        var copy = Without(model);
        ulong actual = ModelHash(copy, folder, source);
        if (actual == whole) return;

        var changed = new List<string>();
        foreach (var tensor in copy.Graph?.Initializer ?? [])
        {
            if (!initializers.TryGetValue(tensor.Name, out ulong recorded)) changed.Add($"'{tensor.Name}' (not in the digest)");
            else if (TensorHash(tensor, folder, source) != recorded) changed.Add($"'{tensor.Name}'");
        }
        var names = new HashSet<string>((copy.Graph?.Initializer ?? []).Select(t => t.Name), StringComparer.Ordinal);
        changed.AddRange(initializers.Keys.Where(k => !names.Contains(k)).Select(k => $"'{k}' (missing)"));
        const int shown = 5;
        string where = changed.Count == 0
            ? "every initializer matches, so the graph or its metadata changed"
            : $"initializer{(changed.Count > 1 ? "s" : "")} {string.Join(", ", changed.Take(shown))}{(changed.Count > shown ? $" (+{changed.Count - shown} more)" : "")} changed";
        throw new InvalidDataException(
            $"{source}: ONNX model is corrupt: its content hashes to XxHash3 {Hex(actual)}, its {OnnxMetadata.Digest} records {Hex(whole)}; {where} " +
            $"(the file was damaged after export, or changed by a tool; export it again, or remove the {OnnxMetadata.Digest} entry to load a model changed on purpose)");
    }

    private static ModelProto Without(ModelProto model)
    {
        var copy = model.Clone(); // tensor bytes are immutable ByteStrings, shared rather than copied
        Remove(copy);
        return copy;
    }

    private static (ulong Whole, Dictionary<string, ulong> Initializers) Parse(string source, string value)
    {
        string Malformed(string why) => $"{source}: ONNX model is corrupt: its {OnnxMetadata.Digest} metadata is not a digest this toolkit writes ({why})";
        try
        {
            using var json = JsonDocument.Parse(value);
            var root = json.RootElement;
            if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty(WholeKey, out var whole) || whole.ValueKind != JsonValueKind.String)
                throw new InvalidDataException(Malformed($"no \"{WholeKey}\" string"));
            var initializers = new Dictionary<string, ulong>(StringComparer.Ordinal);
            if (root.TryGetProperty(InitializersKey, out var tensors))
            {
                if (tensors.ValueKind != JsonValueKind.Object) throw new InvalidDataException(Malformed($"\"{InitializersKey}\" is not an object"));
                foreach (var tensor in tensors.EnumerateObject())
                    initializers[tensor.Name] = tensor.Value.ValueKind == JsonValueKind.String ? ParseHex(tensor.Value.GetString()!, Malformed) : throw new InvalidDataException(Malformed($"initializer '{tensor.Name}' has no hex value"));
            }
            return (ParseHex(whole.GetString()!, Malformed), initializers);
        }
        catch (JsonException e)
        {
            throw new InvalidDataException(Malformed(e.Message), e);
        }
    }

    private static ulong ParseHex(string text, Func<string, string> malformed) =>
        text.Length == 16 && ulong.TryParse(text, NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out ulong value)
            ? value
            : throw new InvalidDataException(malformed($"'{(text.Length > 40 ? text[..40] + "…" : text)}' is not 16 hex digits"));

    private static string Hex(ulong value) => value.ToString("x16", CultureInfo.InvariantCulture);

    /// <summary>The serialized model (without a digest), then the external bytes of its initializers in graph order.</summary>
    private static ulong ModelHash(ModelProto model, string? folder, string source)
    {
        var hashing = new HashingStream(Stream.Null);
        model.WriteTo(hashing);
        foreach (var tensor in model.Graph?.Initializer ?? [])
            HashExternal(hashing, tensor, folder, source);
        return hashing.TakeHash();
    }

    private static ulong TensorHash(TensorProto tensor, string? folder, string source)
    {
        var hashing = new HashingStream(Stream.Null);
        tensor.WriteTo(hashing);
        HashExternal(hashing, tensor, folder, source);
        return hashing.TakeHash();
    }

    private static void HashExternal(HashingStream hashing, TensorProto tensor, string? folder, string source)
    {
        if (tensor.DataLocation != TensorProto.Types.DataLocation.External) return;
        string? location = null, offsetText = null, lengthText = null;
        foreach (var entry in tensor.ExternalData)
        {
            if (entry.Key == "location") location = entry.Value;
            else if (entry.Key == "offset") offsetText = entry.Value;
            else if (entry.Key == "length") lengthText = entry.Value;
        }
        // OnnxModelFile has checked these for a model read from a file; the exporter writes them.
        if (folder is null || location is null ||
            !long.TryParse(offsetText ?? "0", NumberStyles.None, CultureInfo.InvariantCulture, out long offset) ||
            !long.TryParse(lengthText ?? "", NumberStyles.None, CultureInfo.InvariantCulture, out long length))
            throw new InvalidDataException($"{source}: initializer '{tensor.Name}': its external data cannot be found to check the model's digest");
        using var data = File.OpenRead(Path.Combine(folder, location));
        data.Seek(offset, SeekOrigin.Begin);
        byte[] buffer = new byte[(int)Math.Clamp(length, 1, 1 << 20)];
        for (long left = length; left > 0;)
        {
            int read = data.Read(buffer, 0, (int)Math.Min(buffer.Length, left));
            if (read == 0)
                throw new InvalidDataException($"{source}: initializer '{tensor.Name}': '{location}' ends before byte {offset + length}");
            hashing.Write(buffer, 0, read); // into the model's hash (the stream under it discards the bytes)
            left -= read;
        }
    }
}
