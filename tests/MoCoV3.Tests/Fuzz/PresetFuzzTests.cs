using System.Text;
using MoCoV3.Models;
using MoCoV3.Tests.Data;

namespace MoCoV3.Tests.Fuzz;

/// <summary>
/// Fuzzes preset JSON files as <c>--preset FILE.json</c> reads them: every mutated file is a valid preset or is refused
/// with an <see cref="InvalidDataException"/> naming the file (a saved preset's checksum line included).
/// </summary>
[TestClass]
public sealed class PresetFuzzTests
{
    private const int CiCases = 300;

    [TestMethod]
    public void PresetFilesLoadOrAreRefusedWithTheFile()
    {
        using var dir = new TempDir();
        FuzzSeed[] seeds = new[] { "vit-tiny-fmnist", "resnet18-fmnist", "vit-small" }
            .Select(ShippedPreset)
            .SelectMany((bytes, i) => new[]
            {
                new FuzzSeed($"preset{i}.json", bytes),
                new FuzzSeed($"value-preset{i}.json", bytes, StructuredMutations.Json),
            })
            .Append(new FuzzSeed("saved-preset.json", SavedPreset(dir))) // with a checksum line
            .ToArray();
        FuzzHarness.Run("preset .json", dir.Path, seeds, path =>
        {
            ModelPreset preset = PresetCatalog.Get(path);
            preset.Validate(path);
            Assert.IsFalse(string.IsNullOrEmpty(preset.Name), "a preset without a name");
            Assert.IsTrue(Encoding.UTF8.GetByteCount(preset.Name) < 4096, "an implausible name");
        }, CiCases * 7 / 6, typeof(InvalidDataException)).AssertNoFailures(); // the saved preset is a seventh seed
    }

    /// <summary>A preset as the toolkit saves it beside a classifier: with its checksum line.</summary>
    private static byte[] SavedPreset(TempDir dir)
    {
        string path = dir.File("saved.json");
        PresetChecksum.Save(path, PresetCatalog.Get("vit-tiny-fmnist"));
        byte[] bytes = File.ReadAllBytes(path);
        File.Delete(path);
        return bytes;
    }

    /// <summary>The bytes of a preset shipped inside the toolkit's assembly.</summary>
    private static byte[] ShippedPreset(string name)
    {
        using var stream = typeof(PresetCatalog).Assembly.GetManifestResourceStream(PresetCatalog.ResourcePrefix + name + ".json")
            ?? throw new InvalidOperationException($"no shipped preset {name}");
        using var copy = new MemoryStream();
        stream.CopyTo(copy);
        return copy.ToArray();
    }
}
