using MoCoV3.Distributed;
using static TorchSharp.torch;

namespace MoCoV3.Data;

/// <summary>
/// One batch from <see cref="PrefetchLoader"/>: the images as uint8 [B, C, H, W] and the labels as int64 [B], on the CPU.
/// When the loader cut two views on the host (<see cref="ViewCropping"/>), <see cref="Pixels"/> is the first view and
/// <see cref="View2"/> the second. The consumer owns it and disposes it (which disposes the tensors).
/// </summary>
public sealed class ImageBatch : IDisposable
{
    /// <param name="rows">Which rows of the global batch these are (default: the whole batch, <paramref name="indices"/>' count).</param>
    /// <exception cref="ArgumentException"><paramref name="rows"/> does not count as many rows as <paramref name="indices"/>.</exception>
    public ImageBatch(Tensor pixels, Tensor labels, int epoch, int stepInEpoch, IReadOnlyList<int> indices, Tensor? view2 = null,
        BatchSlice? rows = null)
    {
        ArgumentNullException.ThrowIfNull(pixels);
        ArgumentNullException.ThrowIfNull(labels);
        ArgumentNullException.ThrowIfNull(indices);
        Rows = rows ?? BatchSlice.Whole(indices.Count);
        if (Rows.Count != indices.Count)
            throw new ArgumentException($"rows {Rows.Offset}..{Rows.Offset + Rows.Count} of {Rows.GlobalCount} are {Rows.Count} rows, but "
                + $"{indices.Count} indices were given", nameof(rows));
        Pixels = pixels;
        Labels = labels;
        Epoch = epoch;
        StepInEpoch = stepInEpoch;
        Indices = indices;
        View2 = view2;
    }

    /// <summary>uint8 [B, C, H, W].</summary>
    public Tensor Pixels { get; }

    /// <summary>The second view, uint8 [B, C, H, W], when the loader cut the views on the host (then <see cref="Pixels"/> is
    /// the first); null otherwise.</summary>
    public Tensor? View2 { get; }

    /// <summary>int64 [B].</summary>
    public Tensor Labels { get; }

    public int Epoch { get; }

    /// <summary>The 0-based step of this batch within its epoch.</summary>
    public int StepInEpoch { get; }

    /// <summary>Which rows of the global batch this batch holds: the whole batch unless the loader reads one rank's share.</summary>
    public BatchSlice Rows { get; }

    /// <summary>The dataset indices of this batch's images (<see cref="Rows"/>), in batch order.</summary>
    public IReadOnlyList<int> Indices { get; }

    /// <summary>How long the consumer waited for this batch (0 when it was already prefetched).</summary>
    public double WaitSeconds { get; internal set; }

    /// <summary>The rows this batch holds (<see cref="Rows"/>' count).</summary>
    public int Count => Indices.Count;

    /// <summary>The rows of the global batch, this rank's and the others'.</summary>
    public int GlobalCount => Rows.GlobalCount;

    public void Dispose()
    {
        Pixels.Dispose();
        Labels.Dispose();
        View2?.Dispose();
    }
}
