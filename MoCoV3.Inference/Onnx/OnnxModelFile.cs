using System.Globalization;
using Google.Protobuf;
using Onnx;

namespace MoCoV3.Inference;

/// <summary>
/// Reads an ONNX model in managed code and checks it before ONNX Runtime sees it, so that a corrupt or hostile file is
/// refused with an <see cref="InvalidDataException"/> naming it instead of reaching the native loader: the protobuf
/// must parse, <see cref="OnnxModelCheck"/> must find no problem (every initializer holds exactly the bytes its shape
/// needs, so no size in the file drives an allocation), and external data must stay in the model's folder and inside
/// the data file; and when the model carries a <see cref="OnnxMetadata.Digest"/>, its content must match it
/// (<see cref="OnnxDigest"/>).
/// </summary>
internal static class OnnxModelFile
{
    /// <summary>Protobuf cannot encode a message of 2 GiB or more; larger weights live in external data.</summary>
    private const long MaxModelBytes = int.MaxValue;

    /// <summary>Reads and checks the model at <paramref name="path"/>.</summary>
    /// <exception cref="FileNotFoundException">No file at <paramref name="path"/>.</exception>
    /// <exception cref="InvalidDataException">The file is not a well-formed ONNX model.</exception>
    public static ModelProto Read(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: ONNX model not found", path);
        long length = new FileInfo(path).Length;
        if (length > MaxModelBytes)
            throw new InvalidDataException($"{path}: not an ONNX model: {length} bytes, more than a protobuf message can hold ({MaxModelBytes})");
        return Check(path, File.ReadAllBytes(path), Path.GetDirectoryName(Path.GetFullPath(path)));
    }

    /// <summary>Parses and checks <paramref name="bytes"/>; <paramref name="folder"/> is where external data lives (null: none allowed).</summary>
    public static ModelProto Check(string source, byte[] bytes, string? folder)
    {
        ModelProto model;
        try
        {
            model = ModelProto.Parser.ParseFrom(bytes);
        }
        catch (InvalidProtocolBufferException e)
        {
            throw new InvalidDataException($"{source}: not an ONNX model: the protobuf does not parse ({e.Message})", e);
        }
        var problems = OnnxModelCheck.Problems(model).ToList();
        if (model.Graph is not null) CheckExternalData(model.Graph, folder, problems);
        if (problems.Count > 0)
        {
            const int shown = 5;
            throw new InvalidDataException($"{source}: not an ONNX model this toolkit can load: {string.Join("; ", problems.Take(shown))}" +
                                           (problems.Count > shown ? $" (+{problems.Count - shown} more)" : ""));
        }
        OnnxDigest.Verify(source, model, folder);
        return model;
    }

    private static void CheckExternalData(GraphProto graph, string? folder, List<string> problems)
    {
        foreach (var tensor in graph.Initializer.Where(t => t.DataLocation == TensorProto.Types.DataLocation.External))
        {
            var entries = tensor.ExternalData.GroupBy(e => e.Key, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.Last().Value, StringComparer.Ordinal);
            if (!entries.TryGetValue("location", out var location) || !entries.TryGetValue("offset", out var offsetText) ||
                !entries.TryGetValue("length", out var lengthText))
                continue; // OnnxModelCheck names the missing key
            string name = tensor.Name;
            if (folder is null)
            {
                problems.Add($"initializer '{name}' keeps its data in '{location}', but the model was given as bytes, without a folder");
                continue;
            }
            if (location.Length == 0 || Path.IsPathRooted(location) || location.Contains('\0') ||
                location.Split('/', '\\').Any(part => part == ".."))
            {
                problems.Add($"initializer '{name}' keeps its data in '{location}', which is not a file name inside the model's folder");
                continue;
            }
            if (!long.TryParse(offsetText, NumberStyles.None, CultureInfo.InvariantCulture, out long offset) ||
                !long.TryParse(lengthText, NumberStyles.None, CultureInfo.InvariantCulture, out long length))
            {
                problems.Add($"initializer '{name}': external offset '{offsetText}' and length '{lengthText}' are not both non-negative integers");
                continue;
            }
            var data = new FileInfo(Path.Combine(folder, location));
            if (!data.Exists)
            {
                problems.Add($"initializer '{name}' keeps its data in '{location}', which does not exist next to the model");
                continue;
            }
            if (offset > data.Length || length > data.Length - offset)
                problems.Add($"initializer '{name}' reads bytes {offset}..{offset + length} of '{location}', which has {data.Length}");
            var sink = new List<string>();
            int size = OnnxModelCheck.ElementSize(tensor.DataType);
            if (OnnxModelCheck.ElementCount(tensor, sink) is long count && size > 0 && count * size != length)
                problems.Add($"initializer '{name}' has {length} external bytes, its shape needs {count * size}");
        }
    }
}
