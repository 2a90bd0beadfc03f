namespace MoCoV3.Models;

/// <summary>Builds the backbone a preset names.</summary>
public static class BackboneFactory
{
    public static Backbone Create(ModelPreset preset) => preset.Arch switch
    {
        "vit" => new VisionTransformer(preset),
        "resnet" => new ResNet(preset),
        _ => throw new ArgumentException($"preset '{preset.Name}': unknown arch '{preset.Arch}'"),
    };
}
