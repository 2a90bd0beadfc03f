namespace MoCoV3.Augment;

/// <summary>
/// Probabilities of the augmentations applied to one of the two views. MoCo v3 uses BYOL's asymmetric
/// recipe: view 1 always blurred and never solarized, view 2 blurred 10% of the time and solarized 20%.
/// </summary>
public sealed record ViewAugmentation(double ColorJitterP, double GrayscaleP, double BlurP, double SolarizeP, double FlipP)
{
    public static readonly ViewAugmentation ByolView1 = new(ColorJitterP: 0.8, GrayscaleP: 0.2, BlurP: 1.0, SolarizeP: 0.0, FlipP: 0.5);
    public static readonly ViewAugmentation ByolView2 = new(ColorJitterP: 0.8, GrayscaleP: 0.2, BlurP: 0.1, SolarizeP: 0.2, FlipP: 0.5);
}
