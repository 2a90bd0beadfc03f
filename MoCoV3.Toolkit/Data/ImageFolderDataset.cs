using MoCoV3.Inference;

namespace MoCoV3.Data;

/// <summary>
/// Images in a folder with one sub-folder per class (torchvision's ImageFolder layout). Classes are the sub-folders in
/// ordinal order; images are the .jpg/.jpeg/.png/.webp files (any case) anywhere below a class folder, in ordinal order
/// of their relative paths. Names starting with '.' are skipped (hidden folders, macOS "._" files). Images are decoded
/// only when read, resized and center-cropped to <c>size</c> x <c>size</c> (see <see cref="ImageDecoder"/>).
/// </summary>
public sealed class ImageFolderDataset : ImageFileDataset
{
    /// <param name="root">The folder with one sub-folder per class.</param>
    /// <param name="size">Height and width of the images once read.</param>
    /// <param name="channels">3 for RGB, 1 for luminance.</param>
    /// <exception cref="DirectoryNotFoundException"><paramref name="root"/> does not exist.</exception>
    /// <exception cref="DataFormatException">No class sub-folder, or no image file at all.</exception>
    public ImageFolderDataset(string root, int size, int channels) : base(root, List(root, size, channels), size, channels)
    {
    }

    private static ImageFileList List(string root, int size, int channels)
    {
        ArgumentException.ThrowIfNullOrEmpty(root);
        ImageDecoder.ValidateShape(size, channels);
        if (!Directory.Exists(root))
            throw new DirectoryNotFoundException($"Image folder not found: {root}");

        string[] classDirs = Directory.GetDirectories(root)
            .Where(d => !IsHidden(d))
            .OrderBy(d => Path.GetFileName(d), StringComparer.Ordinal)
            .ToArray();
        if (classDirs.Length == 0)
            throw new DataFormatException(root, null, "expected one sub-folder per class, found no sub-folder");

        var paths = new List<string>();
        var labels = new List<int>();
        for (int label = 0; label < classDirs.Length; label++)
        {
            string classDir = classDirs[label];
            var files = Directory.EnumerateFiles(classDir, "*", new EnumerationOptions
                {
                    RecurseSubdirectories = true,
                    IgnoreInaccessible = false,
                    AttributesToSkip = 0,
                })
                .Where(f => ImageDecoder.HasImageExtension(f) && !HasHiddenPart(Path.GetRelativePath(classDir, f)))
                .OrderBy(f => Path.GetRelativePath(classDir, f), StringComparer.Ordinal);
            foreach (string file in files)
            {
                paths.Add(file);
                labels.Add(label);
            }
        }
        if (paths.Count == 0)
            throw new DataFormatException(root, null, $"expected image files ({string.Join(", ", ImageDecoder.Extensions)}) "
                + $"in the class folders, found none in {classDirs.Length} folder(s)");

        return new ImageFileList(paths.ToArray(), labels.ToArray(), classDirs.Select(d => Path.GetFileName(d)).ToArray());
    }

    private static bool IsHidden(string path) => Path.GetFileName(path).StartsWith('.');

    private static bool HasHiddenPart(string relativePath) =>
        relativePath.Split(Path.DirectorySeparatorChar).Any(part => part.StartsWith('.'));
}
