namespace MoCoV3.Data;

/// <summary>
/// Fashion-MNIST (Zalando): 60000 training and 10000 test images, 28x28 greyscale, 10 classes, stored as IDX files
/// (gzip-compressed or not). Debian's package <c>dataset-fashion-mnist</c> installs them in <see cref="DefaultFolder"/>.
/// </summary>
public static class FashionMnist
{
    /// <summary>Where the Debian package <c>dataset-fashion-mnist</c> installs the files.</summary>
    public const string DefaultFolder = "/usr/share/datasets/fashion-mnist";

    /// <summary>Height and width of every image.</summary>
    public const int ImageSize = 28;

    /// <summary>The class names, in label order.</summary>
    public static IReadOnlyList<string> ClassNames { get; } =
        ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];

    /// <summary>The file names tried for the images of a split, in order of preference.</summary>
    public static IReadOnlyList<string> ImageFileNames(bool train) => FileNames(train, "images-idx3-ubyte");

    /// <summary>The file names tried for the labels of a split, in order of preference.</summary>
    public static IReadOnlyList<string> LabelFileNames(bool train) => FileNames(train, "labels-idx1-ubyte");

    /// <summary>Whether <paramref name="folder"/> holds at least one of the Fashion-MNIST IDX files.</summary>
    public static bool ContainsIdxFiles(string folder) =>
        Directory.Exists(folder)
        && ImageFileNames(true).Concat(ImageFileNames(false)).Concat(LabelFileNames(true)).Concat(LabelFileNames(false))
            .Any(name => File.Exists(Path.Combine(folder, name)));

    /// <summary>
    /// Loads the training or test split into memory: 1 channel, 28x28, labels 0..9.
    /// </summary>
    /// <param name="folder">The folder with the IDX files; <c>null</c> for <see cref="DefaultFolder"/>.</param>
    /// <param name="train">The training split (<c>train-*</c>) or the test split (<c>t10k-*</c>).</param>
    /// <param name="limit">Keep only the first <paramref name="limit"/> images, if given.</param>
    /// <exception cref="DirectoryNotFoundException">The folder does not exist (the message says how to install it).</exception>
    /// <exception cref="FileNotFoundException">An IDX file of the split is missing.</exception>
    /// <exception cref="DataFormatException">A file is corrupt, the images are not 28x28, the image and label counts
    /// differ, or a label is not in 0..9.</exception>
    public static InMemoryImageDataset Load(string? folder, bool train, int? limit = null)
    {
        if (limit is < 1)
            throw new ArgumentOutOfRangeException(nameof(limit), limit, "expected at least 1 image");
        folder ??= DefaultFolder;
        if (!Directory.Exists(folder))
            throw new DirectoryNotFoundException($"Fashion-MNIST folder not found: {folder}. Install the dataset with "
                + $"`sudo apt-get install dataset-fashion-mnist` (it goes to {DefaultFolder}) or pass --data <folder> "
                + "with the IDX files (train-images-idx3-ubyte.gz, ...).");

        string imagesPath = FindFile(folder, ImageFileNames(train));
        string labelsPath = FindFile(folder, LabelFileNames(train));

        IdxData images = IdxReader.ReadImages(imagesPath);
        if (images.Dimensions[1] != ImageSize || images.Dimensions[2] != ImageSize)
            throw DataFormatException.AtByte(imagesPath, 8, $"expected {ImageSize}x{ImageSize} images, found "
                + $"{images.Dimensions[1]}x{images.Dimensions[2]}");
        IdxData labels = IdxReader.ReadLabels(labelsPath);
        if (labels.Count != images.Count)
            throw DataFormatException.AtByte(labelsPath, 4, $"expected {images.Count} labels, one per image of "
                + $"{imagesPath}, found {labels.Count}");

        int count = Math.Min(images.Count, limit ?? int.MaxValue);
        var labelValues = new int[count];
        for (int i = 0; i < count; i++)
        {
            byte label = labels.Data[i];
            if (label >= ClassNames.Count)
                throw DataFormatException.AtByte(labelsPath, 8 + i, $"expected a label in [0, {ClassNames.Count}), found {label}"
                    + (labels.Compressed ? " (offsets count decompressed bytes)" : ""));
            labelValues[i] = label;
        }

        int imageBytes = ImageSize * ImageSize;
        byte[] pixels = count == images.Count ? images.Data : images.Data.AsSpan(0, count * imageBytes).ToArray();
        return new InMemoryImageDataset(imagesPath, pixels, labelValues, 1, ImageSize, ImageSize, ClassNames);
    }

    private static string[] FileNames(bool train, string stem)
    {
        string prefix = train ? "train" : "t10k";
        return [$"{prefix}-{stem}.gz", $"{prefix}-{stem}"];
    }

    private static string FindFile(string folder, IReadOnlyList<string> names)
    {
        foreach (string name in names)
        {
            string path = Path.Combine(folder, name);
            if (File.Exists(path))
                return path;
        }
        throw new FileNotFoundException($"Fashion-MNIST file not found in {folder}: expected {string.Join(" or ", names)}",
            Path.Combine(folder, names[0]));
    }
}
