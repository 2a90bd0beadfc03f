using System.IO.Hashing;
using System.Text;
using System.Text.Json;
using MoCoV3.Models;

namespace MoCoV3.Tests.Integrity;

/// <summary>Presets the toolkit saves end with a checksum comment that the loader checks; hand-written presets load as before.</summary>
[TestClass]
public sealed class PresetChecksumTests
{
    [TestMethod]
    public void ASavedPreset_RoundTrips_AndADamagedOneIsRefused()
    {
        ModelPreset preset = TestPresets.MicroVit;
        string path = Path.Combine(TestData.NewFolder("preset-"), "preset.json");
        PresetChecksum.Save(path, preset);
        string text = File.ReadAllText(path);
        string[] lines = text.TrimEnd('\n').Split('\n');
        string body = string.Join("\n", lines[..^1]) + "\n";
        Assert.AreEqual($"// mocov3 checksum xxh3 {XxHash3.HashToUInt64(Encoding.UTF8.GetBytes(body)):x16}", lines[^1]);
        Assert.AreEqual(JsonSerializer.Serialize(preset, ModelPreset.Json), JsonSerializer.Serialize(PresetCatalog.Load(path), ModelPreset.Json));

        string damaged = text.Replace($"\"embed_dim\": {preset.Vit.EmbedDim},", $"\"embed_dim\": {preset.Vit.EmbedDim + 16},", StringComparison.Ordinal);
        Assert.AreNotEqual(text, damaged);
        File.WriteAllText(path, damaged);
        var e = Assert.ThrowsExactly<InvalidDataException>(() => PresetCatalog.Load(path));
        StringAssert.StartsWith(e.Message, $"{path}: preset is corrupt: its content hashes to XxHash3 ");
        StringAssert.Contains(e.Message, "if you edited it on purpose, delete that line");
        Assert.ThrowsExactly<InvalidDataException>(() => PresetCatalog.Get(path));

        File.WriteAllText(path, damaged[..damaged.TrimEnd('\n').LastIndexOf('\n')] + "\n"); // the checksum line deleted
        Assert.AreEqual(preset.Vit.EmbedDim + 16, PresetCatalog.Load(path).Vit.EmbedDim);
    }
}
