namespace MoCoV3.Data;

/// <summary>
/// A dataset that can cut augmentation views from its original images on the host (image files), instead of handing
/// out one fixed-size image per sample for the device to crop.
/// </summary>
public interface IViewDataset : IImageDataset
{
    /// <summary>Whether <see cref="ReadViews"/> works for this dataset (a subset asks the dataset it wraps).</summary>
    bool CanCutViews { get; }

    /// <summary>
    /// Writes two views of each image at <paramref name="indices"/> (CHW, <c>Channels x Size x Size</c> each, one image
    /// after another) into <paramref name="view1"/> and <paramref name="view2"/>, cut as <paramref name="cropping"/> draws
    /// them for (seed, <paramref name="step"/>, dataset index), and the labels into <paramref name="labels"/>.
    /// Thread-safe.
    /// </summary>
    void ReadViews(ReadOnlySpan<int> indices, ViewCropping cropping, long step, Span<byte> view1, Span<byte> view2, Span<long> labels);
}
