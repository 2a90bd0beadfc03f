using System.Text.Json.Serialization;
using MoCoV3.Models;

namespace MoCoV3.Training;

/// <summary>
/// The views a pretraining step sees (<c>--augment</c>): <c>mocov3</c>, the asymmetric BYOL recipe of the paper (two random
/// crops, colour jitter, grayscale, blur, solarize), or <c>none</c>, the plain image twice (ablations and tests).
/// </summary>
[JsonConverter(typeof(JsonEnumConverter<AugmentationRecipe>))]
public enum AugmentationRecipe
{
    [JsonStringEnumMemberName("mocov3")] MoCoV3,
    [JsonStringEnumMemberName("none")] None,
}
