using MoCoV3.Models;

namespace MoCoV3.Training;

/// <summary>
/// Model FLOPs of one MoCo v3 step, counted analytically from a ViT preset (a multiply-add is 2 FLOPs; matrix products
/// only: normalisation, activations, softmax and the optimiser are left out, as MFU figures usually do).
/// Per image and crop, the query encoder and the predictor run forward and backward (backward ≈ 2× forward) and the
/// momentum encoder forward: with two crops, a step is 6·(encoder + predictor) + 2·encoder forward passes, ≈ 8× the
/// backbone's forward. ViT-S/16 at 224 px: 9.2 GFLOP forward (backbone), ViT-B/16: 35.1.
/// </summary>
public static class StepFlops
{
    /// <summary>Forward FLOPs of the ViT backbone for one image; null for other architectures.</summary>
    public static double? BackboneForward(ModelPreset preset)
    {
        ArgumentNullException.ThrowIfNull(preset);
        if (preset.Arch != Architecture.Vit) return null;
        double patches = Math.Pow(preset.Input.ImageSize / preset.Vit.PatchSize, 2);
        double tokens = patches + 1; // the class token
        double d = preset.Vit.EmbedDim, hidden = Math.Round(d * preset.Vit.MlpRatio);
        double patchEmbed = 2 * patches * preset.Vit.PatchSize * preset.Vit.PatchSize * preset.Input.Channels * d;
        double perBlock = 2 * tokens * d * 3 * d   // qkv
                        + 2 * 2 * tokens * tokens * d // q·kᵀ and attention·v, all heads together
                        + 2 * tokens * d * d       // output projection
                        + 2 * 2 * tokens * d * hidden; // MLP
        return patchEmbed + preset.Vit.Depth * perBlock;
    }

    /// <summary>Forward FLOPs of an MLP head of <paramref name="layers"/> linear layers, per image.</summary>
    private static double Mlp(int layers, double input, double hidden, double output) =>
        layers == 1 ? 2 * input * output : 2 * (input * hidden + (layers - 2) * hidden * hidden + hidden * output);

    /// <summary>FLOPs of one training step per image (both crops); null for other architectures.</summary>
    public static double? StepPerImage(ModelPreset preset)
    {
        if (BackboneForward(preset) is not double backbone) return null;
        double encoder = backbone + Mlp(preset.Heads.ProjectorLayers, preset.Vit.EmbedDim, preset.Heads.HiddenDim, preset.Heads.OutDim);
        double predictor = Mlp(preset.Heads.PredictorLayers, preset.Heads.OutDim, preset.Heads.HiddenDim, preset.Heads.OutDim);
        return 2 * (3 * (encoder + predictor) + encoder);
    }
}
