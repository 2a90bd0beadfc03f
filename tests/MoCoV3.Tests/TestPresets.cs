using MoCoV3.Models;

namespace MoCoV3.Tests;

/// <summary>Small presets for fast tests, derived from the shipped ones.</summary>
internal static class TestPresets
{
    public static ModelPreset Get(string name) => PresetCatalog.Get(name);

    /// <summary>A 2-block ViT on 16x16 grayscale images with 64-wide heads: builds and runs in milliseconds.</summary>
    public static ModelPreset MicroVit => Get("vit-tiny-fmnist") with
    {
        Name = "micro-vit",
        ImageSize = 16,
        PatchSize = 4,
        EmbedDim = 32,
        Depth = 2,
        Heads = 2,
        HiddenDim = 64,
        OutDim = 16,
    };
}
