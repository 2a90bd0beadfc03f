namespace MoCoV3.Data;

/// <summary>Argument checks shared by the <see cref="IImageDataset.ReadBatch"/> implementations.</summary>
internal static class BatchChecks
{
    /// <summary>Every index in range; buffers exactly the size of the batch.</summary>
    public static void Validate(IImageDataset dataset, ReadOnlySpan<int> indices, Span<byte> pixels, Span<long> labels)
    {
        long imageBytes = (long)dataset.Channels * dataset.Height * dataset.Width;
        if (pixels.Length != imageBytes * indices.Length)
            throw new ArgumentException($"expected a pixel buffer of {indices.Length} x {imageBytes} bytes, "
                + $"found {pixels.Length} bytes", nameof(pixels));
        if (labels.Length != indices.Length)
            throw new ArgumentException($"expected a label buffer of {indices.Length} entries, found {labels.Length}",
                nameof(labels));
        foreach (int index in indices)
        {
            if ((uint)index >= (uint)dataset.Count)
                throw new ArgumentOutOfRangeException(nameof(indices), index,
                    $"{dataset.Source}: index out of range [0, {dataset.Count})");
        }
    }
}
