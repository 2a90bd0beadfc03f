using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using MoCoV3.IO;
using static TorchSharp.torch;

namespace MoCoV3.Checkpoints;

/// <summary>
/// Reads and writes Hugging Face <c>.safetensors</c> files: an unsigned 64-bit little-endian header length N, N bytes of
/// UTF-8 JSON (<c>{name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {str: str}}</c>), then the
/// raw little-endian, row-major tensor bytes, offsets relative to the end of the header.
/// <para>
/// The reader treats the file as hostile and checks every number before it is used: N at most
/// <see cref="MaxHeaderBytes"/> (the reference implementation's limit) and within the file; the header valid UTF-8 JSON
/// of bounded depth with no duplicate names; every entry an object with exactly the three fields; a supported dtype;
/// a shape of at most <see cref="MaxRank"/> non-negative dimensions whose element count × dtype size (overflow-checked)
/// equals its byte range; the ranges inside the data section, in order without overlaps or gaps, covering it exactly
/// (as the reference implementation requires). Tensors are allocated only after all of that, so their total size is
/// bounded by the file's. Every refusal is an <see cref="InvalidDataException"/> that names the file (and the tensor).
/// </para>
/// <para>
/// Why by hand: TorchSharp 0.107 has no safetensors support, and TorchSharp.PyBridge 1.4.4's (<c>load_safetensors</c>)
/// allocates each tensor from the header's shape before looking at its offsets, checks neither the ranges against the
/// file nor the byte count against the shape, and writes the header length in UTF-16 characters rather than bytes.
/// </para>
/// </summary>
public static class SafeTensorsFile
{
    /// <summary>The largest header accepted (100 MiB, as the safetensors reference implementation).</summary>
    public const long MaxHeaderBytes = 100L << 20;

    /// <summary>The most dimensions a tensor may have here (model weights have at most 5).</summary>
    public const int MaxRank = 8;

    /// <summary>The header's key for the free-form string map.</summary>
    public const string MetadataKey = "__metadata__";

    /// <summary>The largest tensor read into one buffer (2 GiB: the length of a .NET span).</summary>
    private const long MaxTensorBytes = int.MaxValue;

    /// <summary>
    /// True when the file looks like a safetensors file: at least 9 bytes, and the 9th (the header's first) is <c>{</c>.
    /// The length field is not judged here, so a file with a damaged length still reaches <see cref="Read"/> and its message.
    /// </summary>
    public static bool LooksLikeSafeTensors(string path)
    {
        Span<byte> head = stackalloc byte[9];
        using var f = File.OpenRead(path);
        return f.ReadAtLeast(head, head.Length, throwOnEndOfStream: false) == head.Length && head[8] == (byte)'{';
    }

    /// <summary>The checked header of the file (no tensor bytes are read).</summary>
    public static SafeTensorsHeader ReadHeader(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: checkpoint not found", path);
        using var stream = File.OpenRead(path);
        return ReadHeader(path, stream);
    }

    /// <summary>Every tensor of the file (CPU, in header order) and its metadata; the caller disposes the result.</summary>
    public static SafeTensorsContent Read(string path)
    {
        if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("safetensors files are little-endian; this machine is not");
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: checkpoint not found", path);
        using var stream = File.OpenRead(path);
        var header = ReadHeader(path, stream);
        var tensors = new List<KeyValuePair<string, Tensor>>(header.Entries.Count);
        try
        {
            foreach (var entry in header.Entries)
            {
                if (entry.ByteLength > MaxTensorBytes)
                    throw new InvalidDataException($"{path}: safetensors tensor '{entry.Name}' holds {entry.ByteLength} bytes; tensors over 2 GiB are not read here");
                var tensor = empty(entry.Shape, entry.Type, device: CPU);
                tensors.Add(new(entry.Name, tensor));
                stream.Seek(header.DataStart + entry.Begin, SeekOrigin.Begin);
                try
                {
                    stream.ReadExactly(tensor.bytes);
                }
                catch (EndOfStreamException e)
                {
                    throw new InvalidDataException($"{path}: safetensors tensor '{entry.Name}' is cut short (the file changed while it was read?)", e);
                }
            }
            return new SafeTensorsContent(tensors, header.Metadata);
        }
        catch
        {
            foreach (var (_, t) in tensors) t.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Writes the tensors (any device; stored as they are, contiguous, in the given order) and the metadata strings
    /// through <see cref="DurableFile"/>. Names must be unique and non-empty, dtypes among F32, F16, BF16, F64 and I64.
    /// The header is padded with spaces to a multiple of 8 bytes, so that the data section is aligned as the reference
    /// writer aligns it.
    /// </summary>
    public static void Write(string path, IEnumerable<KeyValuePair<string, Tensor>> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var list = tensors.ToList();
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (name, t) in list)
        {
            if (string.IsNullOrEmpty(name) || name == MetadataKey)
                throw new ArgumentException($"{path}: '{name}' cannot name a safetensors tensor");
            if (!names.Add(name)) throw new ArgumentException($"{path}: tensor '{name}' given twice");
            if (!SafeTensorsEntry.Supported.Values.Any(s => s.Type == t.dtype))
                throw new ArgumentException($"{path}: tensor '{name}' is {t.dtype}; safetensors files are written here with F32, F16, BF16, F64 or I64 tensors");
        }
        if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("safetensors files are little-endian; this machine is not");

        using var scope = NewDisposeScope();   // owns the contiguous CPU copies
        var data = list.Select(kv => (kv.Key, Value: kv.Value.detach().cpu().contiguous())).ToList();
        byte[] header = HeaderJson(data, metadata);
        DurableFile.Write(path, stream =>
        {
            Span<byte> length = stackalloc byte[8];
            BinaryPrimitives.WriteUInt64LittleEndian(length, (ulong)header.Length);
            stream.Write(length);
            stream.Write(header);
            foreach (var (_, t) in data) stream.Write(t.bytes);
        });
    }

    private static byte[] HeaderJson(List<(string Name, Tensor Value)> data, IReadOnlyDictionary<string, string>? metadata)
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            if (metadata is { Count: > 0 })
            {
                json.WriteStartObject(MetadataKey);
                foreach (var (key, value) in metadata) json.WriteString(key, value);
                json.WriteEndObject();
            }
            long offset = 0;
            foreach (var (name, t) in data)
            {
                string dtype = SafeTensorsEntry.Supported.First(s => s.Value.Type == t.dtype).Key;
                long bytes = t.NumberOfElements * t.ElementSize;
                json.WriteStartObject(name);
                json.WriteString("dtype", dtype);
                json.WriteStartArray("shape");
                foreach (long d in t.shape) json.WriteNumberValue(d);
                json.WriteEndArray();
                json.WriteStartArray("data_offsets");
                json.WriteNumberValue(offset);
                json.WriteNumberValue(offset + bytes);
                json.WriteEndArray();
                json.WriteEndObject();
                offset += bytes;
            }
            json.WriteEndObject();
        }
        while (buffer.Length % 8 != 0) buffer.WriteByte((byte)' ');
        return buffer.ToArray();
    }

    private static SafeTensorsHeader ReadHeader(string path, FileStream stream)
    {
        long fileLength = stream.Length;
        Span<byte> lengthField = stackalloc byte[8];
        if (stream.ReadAtLeast(lengthField, 8, throwOnEndOfStream: false) < 8)
            throw new InvalidDataException($"{path}: not a safetensors file: {fileLength} bytes, fewer than the 8 of the header length");
        ulong declared = BinaryPrimitives.ReadUInt64LittleEndian(lengthField);
        if (declared > MaxHeaderBytes)
            throw new InvalidDataException($"{path}: corrupt safetensors file: the header length field says {declared} bytes, more than the {MaxHeaderBytes} accepted");
        if ((long)declared > fileLength - 8)
            throw new InvalidDataException($"{path}: corrupt or truncated safetensors file: the header length field says {declared} bytes, but only {fileLength - 8} follow it");
        if (declared < 2)
            throw new InvalidDataException($"{path}: corrupt safetensors file: a header of {declared} bytes cannot hold a JSON object");
        var json = new byte[declared];
        stream.ReadExactly(json);
        if (json[0] != (byte)'{')
            throw new InvalidDataException($"{path}: corrupt safetensors file: the header does not start with '{{' (0x{json[0]:X2})");
        if (!System.Text.Unicode.Utf8.IsValid(json))
            throw new InvalidDataException($"{path}: corrupt safetensors header: not valid UTF-8");
        long dataLength = fileLength - 8 - (long)declared;

        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(json, new JsonDocumentOptions { MaxDepth = 4 });
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{path}: corrupt safetensors header: not valid JSON (byte {e.BytePositionInLine} of line {e.LineNumber + 1}): {e.Message}", e);
        }
        using (document)
        {
            if (document.RootElement.ValueKind != JsonValueKind.Object)
                throw new InvalidDataException($"{path}: corrupt safetensors header: a JSON {document.RootElement.ValueKind}, not an object");
            var entries = new List<SafeTensorsEntry>();
            var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (var property in document.RootElement.EnumerateObject())
            {
                if (!seen.Add(property.Name))
                    throw new InvalidDataException($"{path}: corrupt safetensors header: '{Shown(property.Name)}' appears twice");
                if (property.Name == MetadataKey) ReadMetadata(path, property.Value, metadata);
                else entries.Add(ReadEntry(path, property.Name, property.Value, dataLength));
            }
            CheckRanges(path, entries, dataLength);
            return new SafeTensorsHeader(entries, metadata, 8 + (long)declared);
        }
    }

    private static void ReadMetadata(string path, JsonElement value, Dictionary<string, string> metadata)
    {
        if (value.ValueKind != JsonValueKind.Object)
            throw new InvalidDataException($"{path}: corrupt safetensors header: {MetadataKey} is a JSON {value.ValueKind}, not an object of strings");
        foreach (var item in value.EnumerateObject())
        {
            if (item.Value.ValueKind != JsonValueKind.String)
                throw new InvalidDataException($"{path}: corrupt safetensors header: {MetadataKey} '{Shown(item.Name)}' is a JSON {item.Value.ValueKind}, not a string");
            if (!metadata.TryAdd(item.Name, item.Value.GetString()!))
                throw new InvalidDataException($"{path}: corrupt safetensors header: {MetadataKey} '{Shown(item.Name)}' appears twice");
        }
    }

    private static SafeTensorsEntry ReadEntry(string path, string name, JsonElement value, long dataLength)
    {
        string where = $"{path}: corrupt safetensors header: tensor '{Shown(name)}'";
        if (name.Length == 0) throw new InvalidDataException($"{where}: an empty name");
        if (value.ValueKind != JsonValueKind.Object)
            throw new InvalidDataException($"{where}: a JSON {value.ValueKind}, not an object with dtype, shape and data_offsets");
        JsonElement? dtype = null, shape = null, offsets = null;
        foreach (var field in value.EnumerateObject())
        {
            switch (field.Name)
            {
                case "dtype" when dtype is null: dtype = field.Value; break;
                case "shape" when shape is null: shape = field.Value; break;
                case "data_offsets" when offsets is null: offsets = field.Value; break;
                default: throw new InvalidDataException($"{where}: unexpected or repeated field '{Shown(field.Name)}' (expected dtype, shape, data_offsets)");
            }
        }
        if (dtype is not { ValueKind: JsonValueKind.String } || shape is not { ValueKind: JsonValueKind.Array } || offsets is not { ValueKind: JsonValueKind.Array })
            throw new InvalidDataException($"{where}: needs a string dtype, an array shape and an array data_offsets");

        string type = dtype.Value.GetString()!;
        if (!SafeTensorsEntry.Supported.TryGetValue(type, out var info))
        {
            throw new InvalidDataException(SafeTensorsEntry.Known.Contains(type)
                ? $"{path}: safetensors tensor '{Shown(name)}' has dtype {type}, which is not read here (F32, F16, BF16, F64, I64 are)"
                : $"{where}: unknown dtype '{Shown(type)}'");
        }
        if (shape.Value.GetArrayLength() > MaxRank)
            throw new InvalidDataException($"{where}: {shape.Value.GetArrayLength()} dimensions, more than the {MaxRank} accepted");
        var dims = new long[shape.Value.GetArrayLength()];
        long elements = 1;
        int i = 0;
        foreach (var d in shape.Value.EnumerateArray())
        {
            if (d.ValueKind != JsonValueKind.Number || !d.TryGetInt64(out long n) || n < 0)
                throw new InvalidDataException($"{where}: shape [{string.Join(",", shape.Value.EnumerateArray())}] is not a list of non-negative integers");
            dims[i++] = n;
            elements = n == 0 || elements == 0 ? 0 : elements > long.MaxValue / n ? -1 : elements * n;
            if (elements < 0) throw new InvalidDataException($"{where}: shape [{string.Join(",", shape.Value.EnumerateArray())}] has more elements than can be stored");
        }
        if (offsets.Value.GetArrayLength() != 2)
            throw new InvalidDataException($"{where}: data_offsets has {offsets.Value.GetArrayLength()} values, not [begin, end]");
        long begin = Offset(offsets.Value[0]), end = Offset(offsets.Value[1]);
        if (begin < 0 || end < 0)
            throw new InvalidDataException($"{where}: data_offsets {offsets.Value.GetRawText()} are not non-negative integers");
        if (begin > end || end > dataLength)
            throw new InvalidDataException($"{where}: data_offsets [{begin}, {end}] do not lie inside the {dataLength}-byte data section");
        long expected = elements > long.MaxValue / info.Size ? -1 : elements * info.Size;
        if (expected != end - begin)
            throw new InvalidDataException($"{where}: {type} shape [{string.Join(",", dims)}] needs {(expected < 0 ? "more than 2^63" : expected.ToString())} bytes, but data_offsets [{begin}, {end}] hold {end - begin}");
        return new SafeTensorsEntry(name, type, dims, begin, end);

        static long Offset(JsonElement e) => e.ValueKind == JsonValueKind.Number && e.TryGetInt64(out long v) ? v : -1;
    }

    /// <summary>The ranges, sorted, must follow each other without overlap or gap and end with the data section.</summary>
    private static void CheckRanges(string path, List<SafeTensorsEntry> entries, long dataLength)
    {
        long next = 0;
        string? previous = null;
        foreach (var e in entries.OrderBy(e => e.Begin).ThenBy(e => e.End))
        {
            if (e.Begin < next)
                throw new InvalidDataException($"{path}: corrupt safetensors header: tensor '{Shown(e.Name)}' [{e.Begin}, {e.End}] overlaps tensor '{Shown(previous!)}' (which ends at {next})");
            if (e.Begin > next)
                throw new InvalidDataException($"{path}: corrupt safetensors header: {e.Begin - next} bytes before tensor '{Shown(e.Name)}' belong to no tensor");
            next = e.End;
            previous = e.Name;
        }
        if (next != dataLength)
            throw new InvalidDataException($"{path}: corrupt safetensors file: the tensors end at byte {next} of a {dataLength}-byte data section");
    }

    /// <summary>A name as it appears in a message: at most 80 characters, control characters escaped.</summary>
    private static string Shown(string name)
    {
        var text = new StringBuilder();
        foreach (char c in name.Length > 80 ? name[..80] : name)
            text.Append(char.IsControl(c) ? $"\\u{(int)c:X4}" : c);
        return name.Length > 80 ? text + "…" : text.ToString();
    }
}
