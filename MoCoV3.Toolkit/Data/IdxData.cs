namespace MoCoV3.Data;

/// <summary>The content of an IDX file of unsigned bytes: its dimensions and its payload, row-major.</summary>
public sealed class IdxData
{
    internal IdxData(string file, int[] dimensions, byte[] data, bool compressed)
    {
        File = file;
        Dimensions = dimensions;
        Data = data;
        Compressed = compressed;
    }

    /// <summary>The file it was read from.</summary>
    public string File { get; }

    /// <summary>The sizes of the dimensions, outermost first (for images: count, rows, columns).</summary>
    public IReadOnlyList<int> Dimensions { get; }

    /// <summary>The payload, exactly the product of <see cref="Dimensions"/> bytes.</summary>
    public byte[] Data { get; }

    /// <summary>Whether the file was gzip-compressed.</summary>
    public bool Compressed { get; }

    /// <summary>The size of the outermost dimension (the number of images or labels).</summary>
    public int Count => Dimensions[0];
}
