using MoCoV3.Data;

namespace MoCoV3.Eval.Embed;

/// <summary>
/// The images of <c>mocov3 embed --input</c>: a CSV manifest (<c>path,label</c>), a folder of class sub-folders
/// (labelled), or a folder with the images directly in it (unlabelled).
/// </summary>
public static class EmbeddingInput
{
    /// <summary>Opens <paramref name="input"/> with images of <paramref name="size"/> x <paramref name="size"/> and <paramref name="channels"/> channels.</summary>
    /// <exception cref="FileNotFoundException">Nothing at <paramref name="input"/>.</exception>
    /// <exception cref="ArgumentException">A file that is not a .csv manifest.</exception>
    /// <exception cref="DataFormatException">A manifest or folder without images (named in the message).</exception>
    public static ImageFileDataset Open(string input, int size, int channels)
    {
        ArgumentException.ThrowIfNullOrEmpty(input);
        if (File.Exists(input))
        {
            if (!string.Equals(Path.GetExtension(input), ".csv", StringComparison.OrdinalIgnoreCase))
                throw new ArgumentException($"{input}: expected a folder of images or a .csv manifest (path,label)");
            return new CsvManifestDataset(input, size, channels);
        }
        if (!Directory.Exists(input))
            throw new FileNotFoundException($"{input}: no such image folder or CSV manifest", input);
        return FlatImageFolderDataset.HasImages(input)
            ? new FlatImageFolderDataset(input, size, channels)
            : new ImageFolderDataset(input, size, channels);
    }
}
