using MoCoV3.Inference;

namespace MoCoV3.Data;

/// <summary>
/// Unlabelled images: the .jpg/.jpeg/.png/.webp files (any case) directly in one folder, in ordinal order of their names,
/// hidden ones (starting with '.') skipped. There are no classes: <see cref="IImageDataset.ClassNames"/> is empty and
/// every label is <see cref="NoLabel"/>. Decoded when read, like <see cref="ImageFolderDataset"/>.
/// </summary>
public sealed class FlatImageFolderDataset : ImageFileDataset
{
    public const int NoLabel = -1;

    /// <exception cref="DirectoryNotFoundException"><paramref name="folder"/> does not exist.</exception>
    /// <exception cref="DataFormatException">The folder has no image file.</exception>
    public FlatImageFolderDataset(string folder, int size, int channels) : base(folder, List(folder, size, channels), size, channels)
    {
    }

    /// <summary>Whether <paramref name="folder"/> holds image files itself (not only in sub-folders).</summary>
    public static bool HasImages(string folder) =>
        Directory.Exists(folder) && Directory.EnumerateFiles(folder).Any(IsImage);

    private static ImageFileList List(string folder, int size, int channels)
    {
        ArgumentException.ThrowIfNullOrEmpty(folder);
        ImageDecoder.ValidateShape(size, channels);
        if (!Directory.Exists(folder))
            throw new DirectoryNotFoundException($"Image folder not found: {folder}");
        string[] paths = Directory.EnumerateFiles(folder).Where(IsImage).Order(StringComparer.Ordinal).ToArray();
        if (paths.Length == 0)
            throw new DataFormatException(folder, null, $"expected image files ({string.Join(", ", ImageDecoder.Extensions)}), found none");
        return new ImageFileList(paths, Enumerable.Repeat(NoLabel, paths.Length).ToArray(), []);
    }

    private static bool IsImage(string path) => ImageDecoder.HasImageExtension(path) && !Path.GetFileName(path).StartsWith('.');
}
