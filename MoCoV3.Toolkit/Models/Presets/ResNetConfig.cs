using System.Text.Json.Serialization;

namespace MoCoV3.Models;

/// <summary>A ResNet backbone (<c>arch: resnet</c>): block type, blocks per stage, stem, residual init.</summary>
public sealed record ResNetConfig : BackboneConfig
{
    [JsonIgnore]
    public override Architecture Arch => Architecture.ResNet;

    public ResNetBlock Block { get; init; } = ResNetBlock.Bottleneck;
    /// <summary>Blocks in each of the four stages.</summary>
    public int[] Layers { get; init; } = [3, 4, 6, 3];
    /// <summary>3x3 stride-1 stem without max-pool, for 28-32 px images.</summary>
    public bool SmallStem { get; init; }
    /// <summary>The last BN of each residual branch starts at zero (torchvision's <c>zero_init_residual</c>).</summary>
    public bool ZeroInitResidual { get; init; } = true;

    internal override void Validate(InputConfig input, Action<bool, string> require)
    {
        require(Embedding is EmbeddingKinds.ClassToken, $"embedding must be '{EmbeddingKinds.ClassToken}' for a ResNet, found '{Embedding}'");
        require(Enum.IsDefined(Block), JsonEnum.Expected<ResNetBlock>("block", Block.ToString()));
        require(Layers is { Length: 4 } && Layers.All(l => l is > 0 and <= ModelPreset.MaxDepth), $"layers must be four block counts in 1..{ModelPreset.MaxDepth}");
    }
}
