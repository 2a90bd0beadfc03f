namespace MoCoV3.Data;

/// <summary>
/// A labelled set of images that all have the same shape once loaded (<see cref="Channels"/> x
/// <see cref="Height"/> x <see cref="Width"/>, 8-bit). Readers that decode files resize to that shape.
/// </summary>
public interface IImageDataset
{
    /// <summary>Where the images come from (a folder or file), for messages.</summary>
    string Source { get; }
    int Count { get; }
    int Channels { get; }
    int Height { get; }
    int Width { get; }
    IReadOnlyList<string> ClassNames { get; }

    /// <summary>
    /// Copies the images at <paramref name="indices"/> into <paramref name="pixels"/> (CHW, one image after
    /// another, <c>indices.Length * C * H * W</c> bytes) and their labels into <paramref name="labels"/>.
    /// Thread-safe: the prefetching loader calls it from background threads.
    /// </summary>
    void ReadBatch(ReadOnlySpan<int> indices, Span<byte> pixels, Span<long> labels);
}
