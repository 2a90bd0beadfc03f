using System.Text.Json.Serialization;
using MoCoV3.Models;

namespace MoCoV3.Training;

/// <summary>
/// What a NaN or infinite loss or gradient norm does to a pretraining run (<c>--on-nan</c>): <c>stop</c> (exit; the last
/// checkpoint stays as it was) or <c>rollback</c> (reload the last good checkpoint, halve the learning rate, continue).
/// </summary>
[JsonConverter(typeof(JsonEnumConverter<OnNanPolicy>))]
public enum OnNanPolicy
{
    [JsonStringEnumMemberName("stop")] Stop,
    [JsonStringEnumMemberName("rollback")] Rollback,
}
