using System.Text.Json.Serialization;

namespace MoCoV3.Models;

/// <summary>A preset's backbone family; <c>vit</c> or <c>resnet</c> in JSON.</summary>
[JsonConverter(typeof(JsonEnumConverter<Architecture>))]
public enum Architecture
{
    [JsonStringEnumMemberName("vit")] Vit,
    [JsonStringEnumMemberName("resnet")] ResNet,
}
