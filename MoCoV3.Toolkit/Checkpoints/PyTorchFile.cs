using MoCoV3.IO;
using System.Collections;
using System.IO.Compression;
using TorchSharp.PyBridge;
using static TorchSharp.torch;

namespace MoCoV3.Checkpoints;

/// <summary>
/// Reads and writes <c>torch.save</c> files through TorchSharp.PyBridge, with the checks PyBridge leaves out:
/// the file exists, is a zip (not the legacy pickle format, not a toolkit checkpoint), holds a <c>data.pkl</c>, and
/// declares no more uncompressed bytes than a plausible <c>torch.save</c> archive, and a <c>data.pkl</c> that
/// <see cref="PickleScanner"/> accepts (only the globals a checkpoint needs, every length and tensor size within the
/// file) before PyBridge unpickles it, and every zip entry (storages, <c>data.pkl</c>, <c>version</c>…) matches the
/// CRC-32 the archive records for it (<see cref="ZipIntegrity"/>: <see cref="ZipArchive"/> does not check it); every failure is an <see cref="InvalidDataException"/> that names the file.
/// </summary>
public static class PyTorchFile
{
    /// <summary>torch.save stores its entries uncompressed; a bigger ratio than this is not a PyTorch file.</summary>
    private const long MaxExpansion = 64;

    /// <summary>The wrappers training scripts put around a state dict, looked for in this order.</summary>
    private static readonly string[] Wrappers = ["state_dict", "model", "module"];

    /// <summary>True when the file starts with the zip local-header magic <c>PK\x03\x04</c>.</summary>
    public static bool LooksLikeZip(string path)
    {
        Span<byte> head = stackalloc byte[4];
        using var f = File.OpenRead(path);
        return f.Read(head) == 4 && head.SequenceEqual("PK\u0003\u0004"u8);
    }

    /// <summary>The whole pickled object (usually a dict of tensors, numbers, strings and nested dicts).</summary>
    public static Hashtable Read(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: checkpoint not found", path);
        using var stream = File.OpenRead(path);
        CheckHeader(path, stream);
        CheckArchive(path, stream);
        stream.Seek(0, SeekOrigin.Begin);
        try
        {
            // PyBridge unpickles; the tensors are read here (PickledTensors says why).
            return PickledTensors.Materialize(PyTorchUnpickler.UnpickleStateDict(stream, leaveOpen: true, skipTensorRead: true));
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            throw new InvalidDataException($"{path}: cannot read PyTorch checkpoint: {e.GetType().Name}: {e.Message}", e);
        }
    }

    /// <summary>
    /// Frees the native memory of every tensor in what <see cref="Read"/> returned (state dict, optimiser state, …) now
    /// rather than at GC; shared and (in a crafted pickle) cyclic references are visited once.
    /// </summary>
    public static void DisposeTensors(object? node) => DisposeTensors(node, new HashSet<object>(ReferenceEqualityComparer.Instance));

    private static void DisposeTensors(object? node, HashSet<object> seen)
    {
        if (node is null || node is string || !seen.Add(node)) return;
        switch (node)
        {
            case Tensor t:
                t.Dispose();
                break;
            case IDictionary d:
                foreach (DictionaryEntry e in d) DisposeTensors(e.Value, seen);
                break;
            case IEnumerable list:
                foreach (var item in list) DisposeTensors(item, seen);
                break;
        }
    }

    /// <summary>
    /// The state dict inside a checkpoint: the root, or the dict under <c>state_dict</c>, <c>model</c> or
    /// <c>module</c> (nested wrappers are followed). <paramref name="wrapper"/> is the path taken, e.g.
    /// <c>state_dict</c>, or empty for a flat file. Non-tensor entries are left in; callers skip them.
    /// </summary>
    public static Hashtable FindStateDict(Hashtable root, out string wrapper)
    {
        var current = root;
        var path = new List<string>();
        for (int depth = 0; depth < 4; depth++)
        {
            string? next = Wrappers.FirstOrDefault(w => current[w] is Hashtable);
            if (next is null || current.Values.OfType<Tensor>().Any()) break;
            path.Add(next);
            current = (Hashtable)current[next]!;
        }
        wrapper = string.Join(".", path);
        return current;
    }

    /// <summary>Writes a (possibly nested) dict of tensors, numbers and strings that <c>torch.load</c> reads; written with <see cref="DurableFile"/>.</summary>
    public static void Write(string path, IDictionary root)
    {
        string? dir = Path.GetDirectoryName(Path.GetFullPath(path));
        if (dir is not null) Directory.CreateDirectory(dir);
        DurableFile.Write(path, stream => PyTorchPickler.PickleStateDict(stream, root, leaveOpen: true));
    }

    private static void CheckHeader(string path, FileStream stream)
    {
        Span<byte> head = stackalloc byte[8];
        head = head[..stream.ReadAtLeast(head, head.Length, throwOnEndOfStream: false)];
        if (CheckpointFile.HasMagic(head))
            throw new InvalidDataException($"{path}: a MoCoV3.NET checkpoint, not a PyTorch file");
        if (head.Length >= 4 && head[..4].SequenceEqual("PK\u0003\u0004"u8)) return;
        if (head.Length >= 1 && head[0] == 0x80)
            throw new InvalidDataException($"{path}: legacy (pre-1.6, non-zip) torch.save format, which cannot be read here; re-save it with a current PyTorch");
        throw new InvalidDataException($"{path}: not a PyTorch checkpoint: a torch.save file is a zip archive, this one starts with {Convert.ToHexString(head)} ({stream.Length} bytes)");
    }

    private static void CheckArchive(string path, FileStream stream)
    {
        stream.Seek(0, SeekOrigin.Begin);
        try
        {
            using var archive = new ZipArchive(stream, ZipArchiveMode.Read, leaveOpen: true);
            if (!archive.Entries.Any(e => e.Name == "data.pkl"))
                throw new InvalidDataException($"{path}: cannot read PyTorch checkpoint: the zip holds no data.pkl, so it is not a torch.save file (entries: {string.Join(", ", archive.Entries.Take(5).Select(e => e.FullName))})");
            long budget = MaxExpansion * stream.Length + (1 << 20);
            long declared = archive.Entries.Sum(e => e.Length);
            if (declared > budget)
                throw new InvalidDataException($"{path}: cannot read PyTorch checkpoint: its zip entries declare {declared} bytes in a {stream.Length}-byte file");
            // The entry PyBridge unpickles: the first whose name ends with data.pkl.
            var pickle = archive.Entries.First(e => e.Name.EndsWith("data.pkl", StringComparison.Ordinal));
            PickleScanner.Check(path, ReadEntry(path, pickle), key => StorageLength(archive, key), budget);
            foreach (var entry in archive.Entries.Where(e => e != pickle)) CheckEntry(path, entry);
        }
        catch (Exception e) when (e is InvalidDataException or IOException && !e.Message.StartsWith(path, StringComparison.Ordinal))
        {
            throw new InvalidDataException($"{path}: cannot read PyTorch checkpoint: truncated or corrupt zip archive ({e.Message})", e);
        }
    }

    /// <summary>Reads an entry to its end and checks its length and CRC-32, so that a damaged storage is named here rather than used.</summary>
    private static void CheckEntry(string path, ZipArchiveEntry entry)
    {
        try
        {
            ZipIntegrity.CopyVerified(path, entry, Stream.Null);
        }
        catch (Exception e) when (e is InvalidDataException or IOException && !e.Message.StartsWith(path, StringComparison.Ordinal))
        {
            throw new InvalidDataException($"{path}: cannot read PyTorch checkpoint: zip entry {entry.FullName} is truncated or corrupt ({e.Message})", e);
        }
    }

    /// <summary>Reads an entry whose declared size was checked above, and checks its CRC-32.</summary>
    private static byte[] ReadEntry(string path, ZipArchiveEntry entry) => ZipIntegrity.ReadVerified(path, entry);

    /// <summary>The length of the entry PyBridge reads for a storage key: the first whose full name ends with <c>data/KEY</c>.</summary>
    private static long? StorageLength(ZipArchive archive, string key) =>
        archive.Entries.FirstOrDefault(e => e.FullName.EndsWith($"data/{key}", StringComparison.Ordinal))?.Length;
}
