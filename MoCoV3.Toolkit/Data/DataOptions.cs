namespace MoCoV3.Data;

/// <summary>
/// The images a command reads: a path (a Fashion-MNIST folder, an image folder or a CSV manifest; null = Fashion-MNIST in
/// its default folder), the kind (<see cref="DatasetFactory.Kinds"/>) and limits on how many images of each split are used
/// (each command's documentation says whether it takes the first ones or spreads them over the split).
/// </summary>
public sealed record DataOptions
{
    public string? Path { get; init; }
    /// <summary><c>auto</c>, <c>fashion-mnist</c>, <c>imagefolder</c> or <c>csv</c> (see <see cref="DatasetFactory.Open"/>).</summary>
    public string Kind { get; init; } = DatasetFactory.AutoKind;
    /// <summary>At most this many training images; null for all.</summary>
    public int? Limit { get; init; }
    /// <summary>At most this many test images; null for all (commands that evaluate on a test split).</summary>
    public int? TestLimit { get; init; }

    /// <summary>Opens a split at the given input size (see <see cref="DatasetFactory.Open"/>); the limits are the caller's to apply.</summary>
    public IImageDataset Open(int imageSize, int channels, bool train, bool resampleOnDevice = false) =>
        DatasetFactory.Open(Kind, Path, imageSize, channels, train, resampleOnDevice);
}
