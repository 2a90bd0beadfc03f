using System.Buffers.Binary;
using System.IO.Compression;

namespace MoCoV3.Data;

/// <summary>
/// Reads IDX files of unsigned bytes, the format of MNIST and Fashion-MNIST: a magic number <c>0x000008DD</c> (type 8 =
/// unsigned byte, DD = number of dimensions), the dimension sizes as big-endian int32, then the payload. Files may be
/// gzip-compressed; compression is detected from the content (bytes 1f 8b), not from the file name.
/// </summary>
public static class IdxReader
{
    /// <summary>Magic number of an IDX file of images (unsigned bytes, 3 dimensions: count, rows, columns).</summary>
    public const int ImagesMagic = 0x00000803;

    /// <summary>Magic number of an IDX file of labels (unsigned bytes, 1 dimension: count).</summary>
    public const int LabelsMagic = 0x00000801;

    private const byte UnsignedByteType = 0x08;

    // Deflate cannot expand data by more than about 1032:1; a gzip file can therefore not hold more than this many
    // bytes per compressed byte. Used to refuse header sizes the file cannot possibly contain before allocating.
    private const long MaxDeflateRatio = 1032;

    /// <summary>Reads an IDX file of images: 3 dimensions (count, rows, columns).</summary>
    public static IdxData ReadImages(string path) => Read(path, 3);

    /// <summary>Reads an IDX file of labels: 1 dimension (count).</summary>
    public static IdxData ReadLabels(string path) => Read(path, 1);

    /// <summary>Whether the file starts with the gzip magic bytes 1f 8b.</summary>
    public static bool IsGzip(string path)
    {
        using var file = File.OpenRead(path);
        Span<byte> head = stackalloc byte[2];
        return file.ReadAtLeast(head, 2, throwOnEndOfStream: false) == 2 && head[0] == 0x1f && head[1] == 0x8b;
    }

    /// <summary>
    /// Reads an IDX file of unsigned bytes with <paramref name="dimensions"/> dimensions, plain or gzip-compressed.
    /// </summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="DataFormatException">
    /// Wrong magic number, a truncated file, dimension sizes that disagree with the payload length, corrupt gzip data.
    /// Offsets in the messages of compressed files count decompressed bytes.
    /// </exception>
    public static IdxData Read(string path, int dimensions)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentOutOfRangeException.ThrowIfLessThan(dimensions, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(dimensions, 255);
        if (!File.Exists(path))
            throw new FileNotFoundException($"IDX file not found: {path}", path);

        bool compressed = IsGzip(path);
        using var file = File.OpenRead(path);
        long fileLength = file.Length;
        using Stream stream = compressed ? new GZipStream(file, CompressionMode.Decompress, leaveOpen: true) : file;
        var reader = new PayloadReader(path, stream, compressed);

        // Magic number.
        Span<byte> magic = stackalloc byte[4];
        reader.ReadExactly(magic, "the 4-byte IDX magic number");
        int expectedMagic = (UnsignedByteType << 8) | dimensions;
        int foundMagic = BinaryPrimitives.ReadInt32BigEndian(magic);
        if (foundMagic != expectedMagic)
            throw reader.Error(0, $"expected IDX magic 0x{expectedMagic:X8} (unsigned bytes, {dimensions} dimension(s)), "
                + $"found 0x{foundMagic:X8}");

        // Dimension sizes.
        var dims = new int[dimensions];
        Span<byte> sizeBytes = stackalloc byte[4];
        long payloadLength = 1;
        for (int d = 0; d < dimensions; d++)
        {
            long at = reader.Position;
            reader.ReadExactly(sizeBytes, $"the size of dimension {d} (big-endian int32)");
            uint size = BinaryPrimitives.ReadUInt32BigEndian(sizeBytes);
            if (size > int.MaxValue)
                throw reader.Error(at, $"expected the size of dimension {d} to be at most {int.MaxValue}, found {size}");
            dims[d] = (int)size;
            payloadLength = size == 0 || payloadLength == 0 ? 0 : payloadLength * size;
            if (payloadLength > Array.MaxLength)
                throw reader.Error(at, $"the dimension sizes {Describe(dims, d + 1)} need more than {Array.MaxLength} bytes, "
                    + "more than one array can hold");
        }

        long headerLength = reader.Position;
        // Bound the allocation by what the file can actually hold.
        if (!compressed)
        {
            long available = fileLength - headerLength;
            if (available != payloadLength)
                throw reader.Error(headerLength, $"the dimension sizes {Describe(dims)} need {payloadLength} payload bytes, "
                    + $"found {available}" + (available < payloadLength ? " (the file is truncated)" : " (extra bytes after the data)"));
        }
        else if (payloadLength > fileLength * MaxDeflateRatio)
        {
            throw reader.Error(headerLength, $"the dimension sizes {Describe(dims)} need {payloadLength} payload bytes, but a gzip "
                + $"file of {fileLength} bytes can hold at most {fileLength * MaxDeflateRatio}");
        }

        var data = new byte[payloadLength];
        reader.ReadExactly(data, $"the {payloadLength} payload bytes the dimension sizes {Describe(dims)} announce");
        if (compressed)
        {
            // Reading on to the end also makes the gzip stream check its CRC and length trailer.
            Span<byte> extra = stackalloc byte[1];
            if (reader.Read(extra) != 0)
                throw reader.Error(reader.Position - 1, $"the dimension sizes {Describe(dims)} need {payloadLength} payload bytes, "
                    + "found more data after them");
        }
        return new IdxData(path, dims, data, compressed);
    }

    private static string Describe(int[] dims, int count = -1) =>
        string.Join('x', dims.Take(count < 0 ? dims.Length : count));

    /// <summary>Reads from a plain or decompressing stream, keeping the position and turning errors into DataFormatException.</summary>
    private sealed class PayloadReader(string path, Stream stream, bool compressed)
    {
        public long Position { get; private set; }

        public DataFormatException Error(long offset, string detail, Exception? inner = null) =>
            DataFormatException.AtByte(path, offset, compressed ? detail + " (offsets count decompressed bytes)" : detail, inner);

        public int Read(Span<byte> buffer)
        {
            try
            {
                int n = stream.ReadAtLeast(buffer, buffer.Length, throwOnEndOfStream: false);
                Position += n;
                return n;
            }
            catch (InvalidDataException e)
            {
                throw Error(Position, $"expected valid gzip data, found corrupt data ({e.Message})", e);
            }
        }

        public void ReadExactly(Span<byte> buffer, string what)
        {
            long start = Position;
            int n = Read(buffer);
            if (n < buffer.Length)
                throw Error(start + n, $"expected {what}, found the end of the data after {n} of {buffer.Length} bytes "
                    + "(the file is truncated)");
        }
    }
}
