using System.Text.Json.Serialization;

namespace MoCoV3.Models;

/// <summary>A ResNet's residual block: <c>basic</c> (ResNet-18/34) or <c>bottleneck</c> (ResNet-50 and deeper).</summary>
[JsonConverter(typeof(JsonEnumConverter<ResNetBlock>))]
public enum ResNetBlock
{
    [JsonStringEnumMemberName("basic")] Basic,
    [JsonStringEnumMemberName("bottleneck")] Bottleneck,
}
