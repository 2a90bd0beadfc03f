using System.IO.Hashing;

namespace MoCoV3.IO;

/// <summary>
/// A forward-only stream over another that feeds every byte read from it or written to it into a hash, so that a file
/// is checksummed in the same pass that reads or writes it. <see cref="Position"/> counts the bytes that went through;
/// the wrapped stream is left open. The hash is XxHash3 (64-bit, seed 0): the checksum of toolkit checkpoints and of
/// exported models.
/// </summary>
internal sealed class HashingStream(Stream inner) : Stream
{
    private readonly XxHash3 hash = new();
    private long position;

    /// <summary>Reads <paramref name="buffer"/>'s length in bytes without hashing them (a checksum stored in the file).</summary>
    public void ReadExactlyUnhashed(Span<byte> buffer)
    {
        inner.ReadExactly(buffer);
        position += buffer.Length;
    }

    /// <summary>Writes <paramref name="buffer"/> without hashing it (a checksum stored in the file).</summary>
    public void WriteUnhashed(ReadOnlySpan<byte> buffer)
    {
        inner.Write(buffer);
        position += buffer.Length;
    }

    /// <summary>Reads and hashes the next <paramref name="count"/> bytes (fewer at the end of the stream); returns how many.</summary>
    public long Skip(long count)
    {
        byte[] buffer = new byte[(int)Math.Clamp(count, 1, 1 << 20)];
        long done = 0;
        while (done < count)
        {
            int read = Read(buffer, 0, (int)Math.Min(buffer.Length, count - done));
            if (read == 0) break;
            done += read;
        }
        return done;
    }

    /// <summary>The hash of the bytes since the start or the last <see cref="TakeHash"/>; the hash starts again.</summary>
    public ulong TakeHash()
    {
        ulong value = hash.GetCurrentHashAsUInt64();
        hash.Reset();
        return value;
    }

    public override bool CanRead => inner.CanRead;
    public override bool CanSeek => false;
    public override bool CanWrite => inner.CanWrite;
    public override long Length => inner.Length;

    public override long Position
    {
        get => position;
        set => throw new NotSupportedException("a hashing stream reads and writes in order");
    }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        int read = inner.Read(buffer);
        hash.Append(buffer[..read]);
        position += read;
        return read;
    }

    public override int ReadByte()
    {
        Span<byte> one = stackalloc byte[1];
        return Read(one) == 1 ? one[0] : -1;
    }

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        inner.Write(buffer);
        hash.Append(buffer);
        position += buffer.Length;
    }

    public override void WriteByte(byte value) => Write([value]);

    public override void Flush() => inner.Flush();

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException("a hashing stream reads and writes in order");

    public override void SetLength(long value) => throw new NotSupportedException("a hashing stream reads and writes in order");
}
