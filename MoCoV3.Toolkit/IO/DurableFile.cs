using System.Runtime.InteropServices;

namespace MoCoV3.IO;

/// <summary>
/// Files that survive a crash or a SIGKILL whole: the bytes go to <c>PATH.tmp</c>, are flushed to the disk, the temporary
/// file is renamed over <c>PATH</c> (atomic on POSIX file systems) and the folder is flushed so the rename itself is durable.
/// A reader therefore sees the old file or the new one, never a mix; a kill leaves at most a stray <c>PATH.tmp</c>.
/// </summary>
public static class DurableFile
{
    public const string TemporarySuffix = ".tmp";

    /// <summary>Writes <paramref name="path"/> through <paramref name="write"/>; on any failure the temporary file is removed and <paramref name="path"/> is untouched.</summary>
    public static void Write(string path, Action<Stream> write)
    {
        string? folder = Path.GetDirectoryName(Path.GetFullPath(path));
        if (folder is not null) Directory.CreateDirectory(folder);
        string tmp = path + TemporarySuffix;
        try
        {
            using (var stream = new FileStream(tmp, FileMode.Create, FileAccess.Write, FileShare.None))
            {
                write(stream);
                stream.Flush(flushToDisk: true);
            }
            File.Move(tmp, path, overwrite: true);
        }
        catch
        {
            TryDelete(tmp);
            throw;
        }
        SyncFolder(Path.GetDirectoryName(Path.GetFullPath(path))!);
    }

    /// <summary>Writes a UTF-8 text file through <paramref name="write"/>, the same way as <see cref="Write"/>.</summary>
    public static void WriteText(string path, Action<TextWriter> write) =>
        Write(path, stream =>
        {
            using var writer = new StreamWriter(stream, leaveOpen: true);
            write(writer);
        });

    public static void WriteAllText(string path, string text) =>
        Write(path, stream =>
        {
            using var writer = new StreamWriter(stream, leaveOpen: true);
            writer.Write(text);
        });

    /// <summary>Removes a <c>PATH.tmp</c> that a killed write left behind; true if there was one.</summary>
    public static bool RemoveStaleTemporary(string path)
    {
        string tmp = path + TemporarySuffix;
        if (!File.Exists(tmp)) return false;
        File.Delete(tmp);
        return true;
    }

    /// <summary>fsync of a folder, so that a rename in it survives a power loss (POSIX only; Windows commits renames itself).</summary>
    public static void SyncFolder(string folder)
    {
        if (OperatingSystem.IsWindows()) return;
        int fd = open(folder, OpenReadOnly);
        if (fd < 0) throw new IOException($"{folder}: cannot open the folder to flush it (errno {Marshal.GetLastPInvokeError()})");
        try
        {
            if (fsync(fd) != 0) throw new IOException($"{folder}: fsync of the folder failed (errno {Marshal.GetLastPInvokeError()})");
        }
        finally
        {
            _ = close(fd);
        }
    }

    private static void TryDelete(string path)
    {
        try { File.Delete(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
    }

    private const int OpenReadOnly = 0; // O_RDONLY opens a folder on Linux and macOS

    [DllImport("libc", SetLastError = true)]
    private static extern int open([MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags);

    [DllImport("libc", SetLastError = true)]
    private static extern int fsync(int fd);

    [DllImport("libc", SetLastError = true)]
    private static extern int close(int fd);
}
