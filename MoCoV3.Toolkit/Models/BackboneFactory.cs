namespace MoCoV3.Models;

/// <summary>Builds the backbone a preset names.</summary>
public static class BackboneFactory
{
    public static Backbone Create(ModelPreset preset) => preset.Arch switch
    {
        Architecture.Vit => new VisionTransformer(preset),
        Architecture.ResNet => new ResNet(preset),
        _ => throw new ArgumentException($"preset '{preset.Name}': unknown arch {(int)preset.Arch}"),
    };
}
