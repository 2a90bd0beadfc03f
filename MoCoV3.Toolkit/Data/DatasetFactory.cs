namespace MoCoV3.Data;

/// <summary>Opens a dataset by kind name, as the command line names it.</summary>
public static class DatasetFactory
{
    public const string FashionMnistKind = "fashion-mnist";
    public const string ImageFolderKind = "imagefolder";
    public const string CsvKind = "csv";
    public const string AutoKind = "auto";

    /// <summary>The kinds <see cref="Open"/> accepts.</summary>
    public static IReadOnlyList<string> Kinds { get; } = [FashionMnistKind, ImageFolderKind, CsvKind, AutoKind];

    /// <summary>
    /// Opens a dataset.
    /// <list type="bullet">
    /// <item><c>fashion-mnist</c>: the IDX files in <paramref name="path"/> (or <see cref="FashionMnist.DefaultFolder"/>);
    /// the images are 28x28 with 1 channel, so <paramref name="imageSize"/> and <paramref name="channels"/> must be 28 and 1.</item>
    /// <item><c>imagefolder</c>: one sub-folder per class; when the folder has a <c>train</c> sub-folder and a
    /// <c>test</c> (or <c>val</c>) one, the one of the split is used.</item>
    /// <item><c>csv</c>: a CSV manifest (path,label); the same file for both splits.</item>
    /// <item><c>auto</c>: a .csv file is csv; a folder with Fashion-MNIST IDX files is fashion-mnist; another folder is
    /// imagefolder; no path is fashion-mnist in its default folder.</item>
    /// </list>
    /// </summary>
    /// <exception cref="ArgumentException">Unknown kind, a missing path where one is needed, a path of the wrong sort,
    /// or an image shape that Fashion-MNIST cannot provide.</exception>
    /// <exception cref="FileNotFoundException">The path does not exist.</exception>
    /// <exception cref="DirectoryNotFoundException">The folder does not exist.</exception>
    /// <param name="resampleOnDevice">The caller resizes and converts gray to RGB on the device (pretraining, whose
    /// augmentation resamples every crop anyway): Fashion-MNIST is then given at its own 28x28x1 for any preset, so that
    /// e.g. vit-small can be pretrained on it upscaled.</param>
    public static IImageDataset Open(string kind, string? path, int imageSize, int channels, bool train, bool resampleOnDevice = false)
    {
        ArgumentNullException.ThrowIfNull(kind);
        switch (kind.Trim().ToLowerInvariant())
        {
            case FashionMnistKind:
                return OpenFashionMnist(path, imageSize, channels, train, resampleOnDevice);
            case ImageFolderKind:
                return new ImageFolderDataset(SplitFolder(RequirePath(path, kind), train), imageSize, channels);
            case CsvKind:
                return new CsvManifestDataset(RequirePath(path, kind), imageSize, channels);
            case AutoKind:
                return OpenAuto(path, imageSize, channels, train, resampleOnDevice);
            default:
                throw new ArgumentException($"Unknown dataset kind '{kind}': expected one of {string.Join(", ", Kinds)}",
                    nameof(kind));
        }
    }

    private static IImageDataset OpenAuto(string? path, int imageSize, int channels, bool train, bool resampleOnDevice)
    {
        if (path is null)
            return OpenFashionMnist(null, imageSize, channels, train, resampleOnDevice);
        if (File.Exists(path))
        {
            if (string.Equals(Path.GetExtension(path), ".csv", StringComparison.OrdinalIgnoreCase))
                return new CsvManifestDataset(path, imageSize, channels);
            throw new ArgumentException($"Cannot tell the dataset kind of the file {path}: expected a .csv manifest or a "
                + "folder (of Fashion-MNIST IDX files, or of class sub-folders)", nameof(path));
        }
        if (!Directory.Exists(path))
            throw new FileNotFoundException($"Dataset path not found: {path}", path);
        if (FashionMnist.ContainsIdxFiles(path))
            return OpenFashionMnist(path, imageSize, channels, train, resampleOnDevice);
        return new ImageFolderDataset(SplitFolder(path, train), imageSize, channels);
    }

    private static InMemoryImageDataset OpenFashionMnist(string? folder, int imageSize, int channels, bool train, bool resampleOnDevice)
    {
        bool fits = resampleOnDevice ? channels is 1 or 3 : imageSize == FashionMnist.ImageSize && channels == 1;
        if (!fits)
            throw new ArgumentException($"Fashion-MNIST images are {FashionMnist.ImageSize}x{FashionMnist.ImageSize} with 1 "
                + $"channel, but {imageSize}x{imageSize} with {channels} channel(s) were asked for: the model preset does not "
                + "fit this data; pick a preset made for Fashion-MNIST or another dataset");
        return FashionMnist.Load(folder, train);
    }

    /// <summary>The split's sub-folder when <paramref name="root"/> has <c>train</c> and <c>test</c>/<c>val</c>.</summary>
    private static string SplitFolder(string root, bool train)
    {
        string trainDir = Path.Combine(root, "train");
        string? evalDir = new[] { "test", "val" }.Select(name => Path.Combine(root, name)).FirstOrDefault(Directory.Exists);
        if (!Directory.Exists(trainDir) || evalDir is null)
            return root;
        return train ? trainDir : evalDir;
    }

    private static string RequirePath(string? path, string kind) =>
        path ?? throw new ArgumentException($"The dataset kind '{kind}' needs a path (--data)", nameof(path));
}
