using System.Buffers;
using System.IO.Compression;
using System.IO.Hashing;

namespace MoCoV3.IO;

/// <summary>
/// Reads zip entries and checks each against the CRC-32 that the archive's central directory records for it, which
/// <see cref="ZipArchive"/> does not do (a stored entry with flipped bytes reads back without an error). Used for
/// <c>torch.save</c> files (<c>.pth</c>, <c>.pth.tar</c>) and ML.NET model zips (<c>probe.zip</c>). The CRC is computed
/// on the bytes as they are read, so a check costs no second read.
/// </summary>
public static class ZipIntegrity
{
    private const int BufferBytes = 1 << 20;

    /// <summary>
    /// Copies <paramref name="entry"/> to <paramref name="destination"/> (<see cref="Stream.Null"/> to only check it) and
    /// checks its length and CRC-32.
    /// </summary>
    /// <param name="source">The archive's file name, for the error message.</param>
    /// <exception cref="InvalidDataException">The entry's bytes do not match its recorded CRC-32 or length; the message
    /// names <paramref name="source"/> and the entry.</exception>
    public static void CopyVerified(string source, ZipArchiveEntry entry, Stream destination)
    {
        ArgumentNullException.ThrowIfNull(entry);
        ArgumentNullException.ThrowIfNull(destination);
        var crc = new Crc32();
        byte[] buffer = ArrayPool<byte>.Shared.Rent(BufferBytes);
        long length = 0;
        try
        {
            using var input = entry.Open();
            int read;
            while ((read = input.Read(buffer, 0, buffer.Length)) > 0)
            {
                crc.Append(buffer.AsSpan(0, read));
                destination.Write(buffer, 0, read);
                length += read;
            }
        }
        catch (InvalidDataException e) when (!e.Message.StartsWith(source, StringComparison.Ordinal))
        {
            // A damaged deflate stream fails to decode before its CRC can be compared.
            throw new InvalidDataException($"{source}: zip entry {entry.FullName} is corrupt: {e.Message}", e);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
        if (length != entry.Length)
            throw new InvalidDataException($"{source}: zip entry {entry.FullName} is corrupt: it holds {length} bytes, the archive records {entry.Length}");
        uint actual = crc.GetCurrentHashAsUInt32();
        if (actual != entry.Crc32)
            throw new InvalidDataException($"{source}: zip entry {entry.FullName} is corrupt: its CRC-32 is {actual:x8}, the archive records {entry.Crc32:x8} (the file was damaged after it was written)");
    }

    /// <summary>Reads <paramref name="entry"/> into memory and checks it as <see cref="CopyVerified"/> does.</summary>
    public static byte[] ReadVerified(string source, ZipArchiveEntry entry)
    {
        ArgumentNullException.ThrowIfNull(entry);
        using var bytes = new MemoryStream(); // grows with what is read: the recorded length is not trusted
        CopyVerified(source, entry, bytes);
        return bytes.ToArray();
    }

    /// <summary>
    /// Checks every entry of the zip file at <paramref name="path"/> (an ML.NET model zip, say) before another library
    /// loads it.
    /// </summary>
    /// <exception cref="FileNotFoundException">No file at <paramref name="path"/>.</exception>
    /// <exception cref="InvalidDataException">Not a zip archive, or an entry does not match its CRC-32; the message names
    /// the file and the entry.</exception>
    public static void VerifyFile(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: file not found", path);
        try
        {
            using var archive = ZipFile.OpenRead(path);
            foreach (var entry in archive.Entries) CopyVerified(path, entry, Stream.Null);
        }
        catch (Exception e) when (e is InvalidDataException or IOException && !e.Message.StartsWith(path, StringComparison.Ordinal))
        {
            throw new InvalidDataException($"{path}: not a readable zip archive ({e.Message})", e);
        }
    }
}
