using MoCoV3.Models;

namespace MoCoV3.Tests;

/// <summary>Small presets for fast tests, derived from the shipped ones.</summary>
internal static class TestPresets
{
    public static ModelPreset Get(string name) => PresetCatalog.Get(name);

    /// <summary>A 2-block ViT on 16x16 grayscale images with 64-wide heads: builds and runs in milliseconds.</summary>
    public static ModelPreset MicroVit => Get("vit-tiny-fmnist")
        .WithVit(vit => vit with { PatchSize = 4, EmbedDim = 32, Depth = 2, Heads = 2 })
        .WithHeads(heads => heads with { HiddenDim = 64, OutDim = 16 })
        .WithInput(input => input with { ImageSize = 16 }) with
    {
        Name = "micro-vit",
    };
}
