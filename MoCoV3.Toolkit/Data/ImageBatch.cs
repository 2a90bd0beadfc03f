using static TorchSharp.torch;

namespace MoCoV3.Data;

/// <summary>
/// One batch from <see cref="PrefetchLoader"/>: the images as uint8 [B, C, H, W] and the labels as int64 [B], on the CPU.
/// When the loader cut two views on the host (<see cref="ViewCropping"/>), <see cref="Pixels"/> is the first view and
/// <see cref="View2"/> the second. The consumer owns it and disposes it (which disposes the tensors).
/// </summary>
public sealed class ImageBatch : IDisposable
{
    public ImageBatch(Tensor pixels, Tensor labels, int epoch, int stepInEpoch, IReadOnlyList<int> indices, Tensor? view2 = null)
    {
        ArgumentNullException.ThrowIfNull(pixels);
        ArgumentNullException.ThrowIfNull(labels);
        ArgumentNullException.ThrowIfNull(indices);
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

    /// <summary>The dataset indices of the images, in batch order.</summary>
    public IReadOnlyList<int> Indices { get; }

    /// <summary>How long the consumer waited for this batch (0 when it was already prefetched).</summary>
    public double WaitSeconds { get; internal set; }

    public int Count => Indices.Count;

    public void Dispose()
    {
        Pixels.Dispose();
        Labels.Dispose();
        View2?.Dispose();
    }
}
