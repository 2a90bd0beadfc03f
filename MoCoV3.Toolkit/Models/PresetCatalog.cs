using System.Text.Json;

namespace MoCoV3.Models;

/// <summary>The named presets: every <c>*.json</c> in the <c>models/</c> folder shipped beside the toolkit.</summary>
public static class PresetCatalog
{
    /// <summary>Folder of the shipped presets (copied next to the assembly at build time).</summary>
    public static string DefaultFolder => Path.Combine(AppContext.BaseDirectory, "presets");

    public static IReadOnlyList<ModelPreset> All(string? folder = null)
    {
        folder ??= DefaultFolder;
        if (!Directory.Exists(folder))
            throw new DirectoryNotFoundException($"{folder}: preset folder not found");
        return Directory.EnumerateFiles(folder, "*.json").Order(StringComparer.Ordinal).Select(Load).ToList();
    }

    /// <summary>A preset by name, or a JSON file path.</summary>
    public static ModelPreset Get(string nameOrPath, string? folder = null)
    {
        if (nameOrPath.EndsWith(".json", StringComparison.OrdinalIgnoreCase) && File.Exists(nameOrPath))
            return Load(nameOrPath);
        string path = Path.Combine(folder ?? DefaultFolder, nameOrPath + ".json");
        if (!File.Exists(path))
        {
            string known = string.Join(", ", All(folder).Select(p => p.Name));
            throw new ArgumentException($"unknown preset '{nameOrPath}'; known presets: {known}");
        }
        return Load(path);
    }

    public static ModelPreset Load(string path)
    {
        ModelPreset? preset;
        try
        {
            using var stream = File.OpenRead(path);
            preset = JsonSerializer.Deserialize<ModelPreset>(stream, ModelPreset.Json);
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{path}: invalid preset JSON at {e.Path} (line {e.LineNumber}): {e.Message}", e);
        }
        if (preset is null) throw new InvalidDataException($"{path}: empty preset");
        preset.Validate(path);
        return preset;
    }
}
