using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace MoCoV3.Inference;

/// <summary>
/// What a model sees of an image: the file decoded by <see cref="ImageDecoder"/> (shorter side resized to
/// <see cref="Size"/>, the centre cropped to a square, RGB or luminance), the 8-bit values scaled to [0, 1] in CHW order,
/// and — only for models that do not normalise inside the graph — <c>(x - mean) / std</c> per channel on the host.
/// Models exported by this toolkit normalise as their first node (<see cref="NormalizeOnHost"/> is false), so their
/// input is the [0, 1] pixels and <see cref="Mean"/> / <see cref="Std"/> are informative.
/// </summary>
public sealed record ImagePreprocessing
{
    /// <param name="size">Height and width of the model's input, in pixels.</param>
    /// <param name="channels">1 (luminance) or 3 (RGB).</param>
    /// <param name="mean">Per-channel mean, one value per channel.</param>
    /// <param name="std">Per-channel standard deviation, one positive value per channel.</param>
    /// <param name="normalizeOnHost">Whether <c>(x - mean) / std</c> is applied before the model (false: the graph does it).</param>
    public ImagePreprocessing(int size, int channels, IReadOnlyList<float> mean, IReadOnlyList<float> std, bool normalizeOnHost)
    {
        ImageDecoder.ValidateShape(size, channels);
        ArgumentNullException.ThrowIfNull(mean);
        ArgumentNullException.ThrowIfNull(std);
        if (mean.Count != channels || std.Count != channels)
            throw new ArgumentException($"expected {channels} mean and {channels} std values, found {mean.Count} and {std.Count}");
        if (mean.Any(v => !float.IsFinite(v)) || std.Any(v => !float.IsFinite(v) || v <= 0))
            throw new ArgumentException($"expected finite means and positive finite stds, found mean [{Format(mean)}] std [{Format(std)}]");
        Size = size;
        Channels = channels;
        Mean = mean.ToArray();
        Std = std.ToArray();
        NormalizeOnHost = normalizeOnHost;
    }

    /// <summary>Height and width of the model's input.</summary>
    public int Size { get; }

    /// <summary>1 (luminance: 0.299 R + 0.587 G + 0.114 B) or 3 (RGB).</summary>
    public int Channels { get; }

    public IReadOnlyList<float> Mean { get; }

    public IReadOnlyList<float> Std { get; }

    /// <summary>Whether <c>(x - mean) / std</c> is applied on the host (models without the toolkit's in-graph normalisation).</summary>
    public bool NormalizeOnHost { get; }

    /// <summary>Values per image: <c>Channels * Size * Size</c>.</summary>
    public int ValuesPerImage => Channels * Size * Size;

    /// <summary>Decodes an image file into the model's input (<see cref="ValuesPerImage"/> floats).</summary>
    /// <exception cref="DataFormatException">Not a decodable image; the message starts with the path.</exception>
    /// <exception cref="FileNotFoundException">No file at <paramref name="path"/>.</exception>
    public void Load(string path, Span<float> destination)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: image not found", path);
        byte[] pixels = new byte[ValuesPerImage];
        ImageDecoder.Decode(path, Size, Channels, pixels);
        ToInput(pixels, destination);
    }

    /// <summary>Decodes an encoded image (the bytes of a JPEG, PNG or WebP file) into the model's input.</summary>
    public void Load(ReadOnlySpan<byte> encodedImage, string source, Span<float> destination)
    {
        byte[] pixels = new byte[ValuesPerImage];
        ImageDecoder.Decode(encodedImage, source, Size, Channels, pixels);
        ToInput(pixels, destination);
    }

    /// <summary>
    /// Resizes and crops decoded pixels held in memory (see <see cref="ImageDecoder.Resample"/>) into the model's input,
    /// exactly as a decoded file of those pixels would be; <paramref name="source"/> names the image in error messages.
    /// </summary>
    public void Load(ReadOnlySpan<byte> pixels, int width, int height, PixelLayout layout, string source, Span<float> destination)
    {
        byte[] chw = new byte[ValuesPerImage];
        ImageDecoder.Resample(pixels, width, height, layout, source, Size, Channels, chw);
        ToInput(chw, destination);
    }

    /// <summary>
    /// 8-bit CHW pixels (as <see cref="ImageDecoder"/> writes them, and as the toolkit's datasets hold them) to the model's
    /// input: <c>x / 255</c>, then <c>(x - mean) / std</c> when <see cref="NormalizeOnHost"/>.
    /// </summary>
    public void ToInput(ReadOnlySpan<byte> pixels, Span<float> destination)
    {
        if (pixels.Length % ValuesPerImage != 0 || destination.Length != pixels.Length)
            throw new ArgumentException($"expected whole images of {ValuesPerImage} values in and as many out, found {pixels.Length} and {destination.Length}");
        int plane = Size * Size;
        for (int i = 0; i < pixels.Length; i++)
        {
            float x = pixels[i] / 255f;
            if (NormalizeOnHost)
            {
                int c = i / plane % Channels;
                x = (x - Mean[c]) / Std[c];
            }
            destination[i] = x;
        }
    }

    /// <summary>A one-line JSON form, read back by <see cref="Parse"/> (the ML.NET transformer saves it this way).</summary>
    public override string ToString() => JsonSerializer.Serialize(new Serialized(Size, Channels, Mean.ToArray(), Std.ToArray(), NormalizeOnHost));

    /// <summary>Reads what <see cref="ToString"/> wrote.</summary>
    /// <exception cref="FormatException">Not such a text.</exception>
    public static ImagePreprocessing Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        Serialized? s;
        try
        {
            s = JsonSerializer.Deserialize<Serialized>(text);
        }
        catch (JsonException e)
        {
            throw new FormatException($"not an image preprocessing description: {e.Message}", e);
        }
        if (s is null || s.Mean is null || s.Std is null)
            throw new FormatException($"not an image preprocessing description: '{text}'");
        try
        {
            return new ImagePreprocessing(s.Size, s.Channels, s.Mean, s.Std, s.NormalizeOnHost);
        }
        catch (ArgumentException e)
        {
            throw new FormatException($"not a valid image preprocessing description: {e.Message}", e);
        }
    }

    public bool Equals(ImagePreprocessing? other) =>
        other is not null && Size == other.Size && Channels == other.Channels && NormalizeOnHost == other.NormalizeOnHost &&
        Mean.SequenceEqual(other.Mean) && Std.SequenceEqual(other.Std);

    public override int GetHashCode() => HashCode.Combine(Size, Channels, NormalizeOnHost, Mean.Count > 0 ? Mean[0] : 0, Std.Count > 0 ? Std[0] : 0);

    private static string Format(IEnumerable<float> values) => string.Join(", ", values.Select(v => v.ToString("G6", CultureInfo.InvariantCulture)));

    private sealed record Serialized(
        [property: JsonPropertyName("size")] int Size,
        [property: JsonPropertyName("channels")] int Channels,
        [property: JsonPropertyName("mean")] float[] Mean,
        [property: JsonPropertyName("std")] float[] Std,
        [property: JsonPropertyName("normalize_on_host")] bool NormalizeOnHost);
}
