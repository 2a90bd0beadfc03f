using System.Text.Json.Serialization;

namespace MoCoV3.Models;

/// <summary>The pretraining optimiser of a preset: <c>adamw</c> (the ViT recipe) or <c>lars</c> (the ResNet recipe).</summary>
[JsonConverter(typeof(JsonEnumConverter<OptimizerKind>))]
public enum OptimizerKind
{
    [JsonStringEnumMemberName("adamw")] AdamW,
    [JsonStringEnumMemberName("lars")] Lars,
}
