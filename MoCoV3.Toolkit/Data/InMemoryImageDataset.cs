namespace MoCoV3.Data;

/// <summary>
/// A dataset held entirely in memory: all pixels (8-bit, CHW, one image after another) and the labels. Fashion-MNIST
/// loads into it. Immutable after construction, so <see cref="ReadBatch"/> is thread-safe.
/// </summary>
public sealed class InMemoryImageDataset : IImageDataset
{
    private readonly byte[] _pixels;
    private readonly int[] _labels;
    private readonly int _imageBytes;

    /// <param name="source">Where the data came from, for messages.</param>
    /// <param name="pixels">All images, CHW each, one after another: <c>labels.Length * channels * height * width</c> bytes.
    /// Kept, not copied.</param>
    /// <param name="labels">The class of each image, in [0, <paramref name="classNames"/>.Count). Kept, not copied.</param>
    /// <exception cref="ArgumentException">The pixel count does not match, or a label is out of range.</exception>
    public InMemoryImageDataset(string source, byte[] pixels, int[] labels, int channels, int height, int width,
        IReadOnlyList<string> classNames)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(pixels);
        ArgumentNullException.ThrowIfNull(labels);
        ArgumentNullException.ThrowIfNull(classNames);
        ArgumentOutOfRangeException.ThrowIfLessThan(channels, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(height, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(width, 1);
        if (classNames.Count == 0)
            throw new ArgumentException($"{source}: expected at least one class name, found none", nameof(classNames));
        long imageBytes = (long)channels * height * width;
        if (imageBytes > int.MaxValue || imageBytes * labels.Length != pixels.LongLength)
            throw new ArgumentException($"{source}: expected {labels.Length} images of {channels}x{height}x{width} = "
                + $"{imageBytes * labels.Length} bytes, found {pixels.LongLength} bytes", nameof(pixels));
        for (int i = 0; i < labels.Length; i++)
        {
            if ((uint)labels[i] >= (uint)classNames.Count)
                throw new ArgumentException($"{source}: image {i}: expected a label in [0, {classNames.Count}), "
                    + $"found {labels[i]}", nameof(labels));
        }

        Source = source;
        _pixels = pixels;
        _labels = labels;
        _imageBytes = (int)imageBytes;
        Channels = channels;
        Height = height;
        Width = width;
        ClassNames = classNames.ToArray();
    }

    public string Source { get; }
    public int Count => _labels.Length;
    public int Channels { get; }
    public int Height { get; }
    public int Width { get; }
    public IReadOnlyList<string> ClassNames { get; }

    /// <summary>The label of image <paramref name="index"/>.</summary>
    public int GetLabel(int index) => _labels[index];

    /// <summary>The pixels (CHW) of image <paramref name="index"/>.</summary>
    public ReadOnlySpan<byte> GetImage(int index)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(index);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(index, Count);
        return _pixels.AsSpan(index * _imageBytes, _imageBytes);
    }

    public void ReadBatch(ReadOnlySpan<int> indices, Span<byte> pixels, Span<long> labels)
    {
        BatchChecks.Validate(this, indices, pixels, labels);
        for (int i = 0; i < indices.Length; i++)
        {
            int index = indices[i];
            _pixels.AsSpan(index * _imageBytes, _imageBytes).CopyTo(pixels.Slice(i * _imageBytes, _imageBytes));
            labels[i] = _labels[index];
        }
    }
}
