namespace MoCoV3.Data;

/// <summary>The first <c>count</c> images of another dataset (quick runs, tests).</summary>
public sealed class SubsetDataset(IImageDataset inner, int count) : IViewDataset
{
    public string Source => $"{inner.Source} (first {Count})";
    public int Count { get; } = Math.Min(count, inner.Count);
    public int Channels => inner.Channels;
    public int Height => inner.Height;
    public int Width => inner.Width;
    public IReadOnlyList<string> ClassNames => inner.ClassNames;

    public void ReadBatch(ReadOnlySpan<int> indices, Span<byte> pixels, Span<long> labels)
    {
        foreach (int i in indices)
            if ((uint)i >= (uint)Count) throw new ArgumentOutOfRangeException(nameof(indices), $"index {i} outside the first {Count} images");
        inner.ReadBatch(indices, pixels, labels);
    }

    public bool CanCutViews => inner is IViewDataset { CanCutViews: true };

    public void ReadViews(ReadOnlySpan<int> indices, ViewCropping cropping, long step, Span<byte> view1, Span<byte> view2, Span<long> labels)
    {
        if (inner is not IViewDataset { CanCutViews: true } views)
            throw new NotSupportedException($"{inner.Source}: this dataset cannot cut views on the host");
        foreach (int i in indices)
            if ((uint)i >= (uint)Count) throw new ArgumentOutOfRangeException(nameof(indices), $"index {i} outside the first {Count} images");
        views.ReadViews(indices, cropping, step, view1, view2, labels);
    }
}
