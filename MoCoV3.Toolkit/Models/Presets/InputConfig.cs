namespace MoCoV3.Models;

/// <summary>
/// The <c>input</c> group of a <see cref="ModelPreset"/>: what the encoder is fed (timm's data config) — square images of
/// <see cref="ImageSize"/> pixels with <see cref="Channels"/> channels, normalised by <see cref="Mean"/> and <see cref="Std"/>.
/// </summary>
public sealed record InputConfig
{
    public required int ImageSize { get; init; }
    /// <summary>1 (grayscale) or 3 (RGB).</summary>
    public int Channels { get; init; } = 3;
    public double[] Mean { get; init; } = [0.485, 0.456, 0.406];
    public double[] Std { get; init; } = [0.229, 0.224, 0.225];

    internal void Validate(Action<bool, string> require)
    {
        require(ImageSize is > 0 and <= 4096, $"image_size must be in 1..4096, found {ImageSize}");
        require(Channels is 1 or 3, $"channels must be 1 or 3, found {Channels}");
        require(Mean is not null && Std is not null && Mean.Length == Channels && Std.Length == Channels, $"mean and std must have {Channels} values");
        require(Mean!.All(double.IsFinite) && Std!.All(s => double.IsFinite(s) && s > 0), "mean values must be finite and std values positive");
    }
}
