using System.Globalization;
using System.IO.Hashing;
using System.Text;
using System.Text.Json;
using MoCoV3.IO;

namespace MoCoV3.Models;

/// <summary>
/// The checksum of a preset file the toolkit saves (<c>preset.json</c> beside a classifier checkpoint): a last line
/// <c>// mocov3 checksum xxh3 0123456789abcdef</c>, a JSON comment (presets allow them), holding the XxHash3 of every
/// byte before it. <see cref="PresetCatalog"/> checks it when the line is there, so a damaged file is refused by name; a
/// preset written by hand, or edited on purpose after deleting the line, loads as before.
/// </summary>
public static class PresetChecksum
{
    private const string Prefix = "// mocov3 checksum xxh3 ";

    /// <summary>Writes <paramref name="preset"/> to <paramref name="path"/> (durably) with its checksum line.</summary>
    public static void Save(string path, ModelPreset preset)
    {
        ArgumentNullException.ThrowIfNull(preset);
        byte[] json = Encoding.UTF8.GetBytes(JsonSerializer.Serialize(preset, ModelPreset.Json) + "\n");
        string line = Prefix + XxHash3.HashToUInt64(json).ToString("x16", CultureInfo.InvariantCulture) + "\n";
        DurableFile.Write(path, stream =>
        {
            stream.Write(json);
            stream.Write(Encoding.UTF8.GetBytes(line));
        });
    }

    /// <summary>
    /// Checks the checksum line of a preset's bytes, if it ends with one.
    /// </summary>
    /// <exception cref="InvalidDataException">The bytes before the line do not hash to the value it records, or the
    /// line is malformed; the message names <paramref name="source"/>.</exception>
    public static void Verify(string source, ReadOnlySpan<byte> bytes)
    {
        ReadOnlySpan<byte> text = bytes.TrimEnd("\r\n"u8);
        int start = text.LastIndexOf((byte)'\n') + 1;
        ReadOnlySpan<byte> last = text[start..];
        if (!last.StartsWith(Encoding.UTF8.GetBytes(Prefix))) return;
        string recorded = Encoding.UTF8.GetString(last[Prefix.Length..]).TrimEnd();
        string actual = XxHash3.HashToUInt64(bytes[..start]).ToString("x16", CultureInfo.InvariantCulture);
        if (recorded != actual)
            throw new InvalidDataException(
                $"{source}: preset is corrupt: its content hashes to XxHash3 {actual}, its last line records " +
                $"'{(recorded.Length > 40 ? recorded[..40] + "…" : recorded)}' (damaged after it was saved; if you edited it on purpose, delete that line)");
    }
}
