using MoCoV3.Inference;

namespace MoCoV3.Data;

/// <summary>The image files of a dataset, their labels and the class names, as listed by a folder or a manifest.</summary>
public sealed record ImageFileList(string[] Paths, int[] Labels, string[] ClassNames);

/// <summary>
/// A dataset of image files decoded only when read, resized and center-cropped to <c>size</c> x <c>size</c>
/// (see <see cref="ImageDecoder"/>). <see cref="ImageFolderDataset"/> and <see cref="CsvManifestDataset"/> differ only
/// in how they list the files. For pretraining they also cut two RandomResizedCrop views from the original images
/// (<see cref="ReadViews"/>, <see cref="ViewCutter"/>).
/// </summary>
public abstract class ImageFileDataset : IViewDataset
{
    private readonly ImageFileList _files;

    protected ImageFileDataset(string source, ImageFileList files, int size, int channels)
    {
        Source = source;
        _files = files;
        Channels = channels;
        Height = Width = size;
    }

    public string Source { get; }
    public int Count => _files.Paths.Length;
    public int Channels { get; }
    public int Height { get; }
    public int Width { get; }
    public IReadOnlyList<string> ClassNames => _files.ClassNames;

    /// <summary>The image files (full paths), in index order.</summary>
    public IReadOnlyList<string> Paths => _files.Paths;

    /// <summary>The label of each image, in index order.</summary>
    public IReadOnlyList<int> Labels => _files.Labels;

    /// <summary>Decodes the images in parallel. A file that cannot be decoded throws <see cref="DataFormatException"/>.</summary>
    public void ReadBatch(ReadOnlySpan<int> indices, Span<byte> pixels, Span<long> labels)
    {
        BatchChecks.Validate(this, indices, pixels, labels);
        ImageDecoder.DecodeBatch(_files.Paths, indices, Height, Channels, pixels);
        for (int i = 0; i < indices.Length; i++)
            labels[i] = _files.Labels[indices[i]];
    }

    public bool CanCutViews => true;

    /// <summary>Decodes each image once and cuts its two views (see <see cref="ViewCutter"/>), in parallel.</summary>
    public void ReadViews(ReadOnlySpan<int> indices, ViewCropping cropping, long step, Span<byte> view1, Span<byte> view2, Span<long> labels)
    {
        ArgumentNullException.ThrowIfNull(cropping);
        if (cropping.Crop.Size != Height)
            throw new ArgumentException($"{Source}: views of {cropping.Crop.Size}x{cropping.Crop.Size} asked from a dataset read at {Height}x{Width}",
                nameof(cropping));
        BatchChecks.Validate(this, indices, view1, labels);
        ViewCutter.CutBatch(_files.Paths, indices, cropping, step, Channels, view1, view2);
        for (int i = 0; i < indices.Length; i++)
            labels[i] = _files.Labels[indices[i]];
    }
}
