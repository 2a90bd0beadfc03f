using System.Reflection;
using System.Text.Json;

namespace MoCoV3.Models;

/// <summary>
/// The named presets: the <c>models/*.json</c> of the repository, embedded in this assembly (so a package or a tool finds
/// them wherever it is installed), or the <c>*.json</c> of a folder of one's own, or a JSON file given by path.
/// </summary>
public static class PresetCatalog
{
    /// <summary>Embedded resource names of the shipped presets start with this.</summary>
    public const string ResourcePrefix = "presets/";

    /// <summary>The shipped presets (no <paramref name="folder"/>), or every <c>*.json</c> in <paramref name="folder"/>, by file name.</summary>
    public static IReadOnlyList<ModelPreset> All(string? folder = null)
    {
        if (folder is null)
            return EmbeddedNames().Select(name => LoadEmbedded(name)!).ToList();
        if (!Directory.Exists(folder))
            throw new DirectoryNotFoundException($"{folder}: preset folder not found");
        return Directory.EnumerateFiles(folder, "*.json").Order(StringComparer.Ordinal).Select(Load).ToList();
    }

    /// <summary>A preset by name (shipped, or in <paramref name="folder"/> when given), or a JSON file path.</summary>
    public static ModelPreset Get(string nameOrPath, string? folder = null)
    {
        ArgumentNullException.ThrowIfNull(nameOrPath);
        if (nameOrPath.EndsWith(".json", StringComparison.OrdinalIgnoreCase) && File.Exists(nameOrPath))
            return Load(nameOrPath);
        if (folder is not null)
        {
            string path = Path.Combine(folder, nameOrPath + ".json");
            if (File.Exists(path)) return Load(path);
        }
        else if (LoadEmbedded(nameOrPath) is { } shipped)
        {
            return shipped;
        }
        string known = string.Join(", ", All(folder).Select(p => p.Name));
        throw new ArgumentException($"unknown preset '{nameOrPath}'; known presets: {known}" +
                                    (nameOrPath.EndsWith(".json", StringComparison.OrdinalIgnoreCase) ? $" (no file {nameOrPath})" : ""));
    }

    /// <summary>Reads and validates the preset file at <paramref name="path"/>.</summary>
    public static ModelPreset Load(string path)
    {
        using var stream = File.OpenRead(path);
        return Load(stream, path);
    }

    /// <summary>
    /// Reads and validates a preset from <paramref name="stream"/>; <paramref name="source"/> names it in errors. A preset
    /// that ends with a checksum line (<see cref="PresetChecksum"/>) must match it.
    /// </summary>
    public static ModelPreset Load(Stream stream, string source)
    {
        using var bytes = new MemoryStream();
        stream.CopyTo(bytes);
        var json = bytes.GetBuffer().AsSpan(0, (int)bytes.Length);
        PresetChecksum.Verify(source, json);
        return ModelPreset.Parse(json, source);
    }

    /// <summary>
    /// The preset an exported model records in its ONNX metadata (<c>mocov3.preset</c>), read and validated like a preset
    /// file; <paramref name="source"/> (the model's path) names it in errors, which say what is missing or wrong.
    /// </summary>
    public static ModelPreset FromOnnxMetadata(IReadOnlyDictionary<string, string> metadata, string source, string? purpose = null)
    {
        ArgumentNullException.ThrowIfNull(metadata);
        if (!metadata.TryGetValue(MoCoV3.Inference.OnnxMetadata.Preset, out string? json))
            throw new InvalidDataException($"{source}: no '{MoCoV3.Inference.OnnxMetadata.Preset}' metadata{(purpose is null ? "" : $", so {purpose}")}; " +
                                           "was it exported by MoCoV3.NET (`mocov3 export`)?");
        if (string.IsNullOrWhiteSpace(json)) throw new InvalidDataException($"{source}: '{MoCoV3.Inference.OnnxMetadata.Preset}' metadata is empty");
        return Load(new MemoryStream(System.Text.Encoding.UTF8.GetBytes(json)), $"{source} ('{MoCoV3.Inference.OnnxMetadata.Preset}' metadata)");
    }

    private static IEnumerable<string> EmbeddedNames() =>
        typeof(PresetCatalog).Assembly.GetManifestResourceNames()
            .Where(n => n.StartsWith(ResourcePrefix, StringComparison.Ordinal) && n.EndsWith(".json", StringComparison.Ordinal))
            .Select(n => n[ResourcePrefix.Length..^".json".Length])
            .Order(StringComparer.Ordinal);

    private static ModelPreset? LoadEmbedded(string name)
    {
        string resource = ResourcePrefix + name + ".json";
        using var stream = typeof(PresetCatalog).Assembly.GetManifestResourceStream(resource);
        return stream is null ? null : Load(stream, $"{name} (shipped preset)");
    }
}
