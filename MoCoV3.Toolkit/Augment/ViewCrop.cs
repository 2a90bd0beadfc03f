namespace MoCoV3.Augment;

/// <summary>
/// Where one view is cut from an image: the box in the image's pixels (rows <see cref="Top"/> to
/// <see cref="Top"/> + <see cref="Height"/>, columns <see cref="Left"/> to <see cref="Left"/> + <see cref="Width"/>,
/// as torchvision's <c>resized_crop(img, top, left, height, width, size)</c> takes them), and whether the resized view is
/// then flipped horizontally.
/// </summary>
public readonly record struct ViewCrop(int Top, int Left, int Height, int Width, bool Flip);
