using MoCoV3.Data;

namespace MoCoV3.Eval.Classification;

/// <summary>
/// The images [<see cref="Offset"/>, <see cref="Offset"/> + <see cref="Count"/>) of a dataset, as a dataset of their own
/// (index i is the inner dataset's Offset + i): one rank's share of a test set in a data-parallel evaluation.
/// </summary>
internal sealed class DatasetRange : IImageDataset
{
    private readonly IImageDataset inner;

    public DatasetRange(IImageDataset inner, int offset, int count)
    {
        ArgumentNullException.ThrowIfNull(inner);
        if (offset < 0 || count < 0 || offset + count > inner.Count)
            throw new ArgumentOutOfRangeException(nameof(count), $"images [{offset}, {offset + count}) do not lie in the {inner.Count} of {inner.Source}");
        (this.inner, Offset, Count) = (inner, offset, count);
    }

    public int Offset { get; }
    public int Count { get; }
    public string Source => $"{inner.Source} (images {Offset}…{Offset + Count - 1})";
    public int Channels => inner.Channels;
    public int Height => inner.Height;
    public int Width => inner.Width;
    public IReadOnlyList<string> ClassNames => inner.ClassNames;

    public void ReadBatch(ReadOnlySpan<int> indices, Span<byte> pixels, Span<long> labels)
    {
        var shifted = new int[indices.Length];
        for (int i = 0; i < indices.Length; i++)
        {
            if ((uint)indices[i] >= (uint)Count) throw new ArgumentOutOfRangeException(nameof(indices), $"index {indices[i]} outside the {Count} images of {Source}");
            shifted[i] = Offset + indices[i];
        }
        inner.ReadBatch(shifted, pixels, labels);
    }
}
