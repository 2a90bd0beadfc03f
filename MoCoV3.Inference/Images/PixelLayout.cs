namespace MoCoV3.Inference;

/// <summary>How decoded pixels lie in memory, for <see cref="ImageDecoder.Resample"/>: one byte per channel, rows packed.</summary>
public enum PixelLayout
{
    /// <summary>One luminance byte per pixel.</summary>
    Gray8,
    /// <summary>Red, green, blue.</summary>
    Rgb24,
    /// <summary>Blue, green, red (ML.NET's <c>MLImage.GetBGRPixels</c>, OpenCV).</summary>
    Bgr24,
    /// <summary>Red, green, blue, alpha (alpha is dropped).</summary>
    Rgba32,
    /// <summary>Blue, green, red, alpha (ML.NET's <c>MLImage.Pixels</c> in <c>Bgra32</c>; alpha is dropped).</summary>
    Bgra32,
}
