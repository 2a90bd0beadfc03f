using System.Collections.Concurrent;
using System.Reflection;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace MoCoV3.Models;

/// <summary>
/// The names of the toolkit's enums in JSON and on the command line (each member's <see cref="JsonStringEnumMemberNameAttribute"/>,
/// e.g. <c>resnet</c>, <c>adamw</c>, <c>rollback</c>): written by <see cref="Name{T}"/>, read by <see cref="Parse{T}"/>,
/// which names the accepted values when a value is not one of them.
/// </summary>
public static class JsonEnum
{
    private static readonly ConcurrentDictionary<Type, IReadOnlyList<(string Name, object Value)>> Members = new();

    /// <summary>The JSON name of <paramref name="value"/>.</summary>
    public static string Name<T>(this T value) where T : struct, Enum =>
        All<T>().First(m => EqualityComparer<T>.Default.Equals(m.Value, value)).Name;

    /// <summary>The accepted names, in declaration order.</summary>
    public static IReadOnlyList<string> Names<T>() where T : struct, Enum => All<T>().Select(m => m.Name).ToList();

    /// <summary>Whether <paramref name="name"/> is one of the names (exactly).</summary>
    public static bool TryParse<T>(string? name, out T value) where T : struct, Enum
    {
        foreach (var m in All<T>())
        {
            if (m.Name != name) continue;
            value = m.Value;
            return true;
        }
        value = default;
        return false;
    }

    /// <summary>The member named <paramref name="name"/>; an <see cref="ArgumentException"/> naming <paramref name="what"/> and the accepted names otherwise.</summary>
    public static T Parse<T>(string? name, string what) where T : struct, Enum =>
        TryParse(name, out T value) ? value : throw new ArgumentException(Expected<T>(what, name));

    internal static string Expected<T>(string what, string? found) where T : struct, Enum =>
        $"{what} must be {string.Join(" or ", Names<T>().Select(n => $"'{n}'"))}, found {(found is null ? "null" : $"'{found}'")}";

    private static IEnumerable<(string Name, T Value)> All<T>() where T : struct, Enum =>
        Members.GetOrAdd(typeof(T), t => t.GetFields(BindingFlags.Public | BindingFlags.Static)
                .Select(f => (f.GetCustomAttribute<JsonStringEnumMemberNameAttribute>()?.Name ?? f.Name, f.GetValue(null)!))
                .ToList())
            .Select(m => (m.Name, (T)m.Value));
}

/// <summary>
/// Reads and writes an enum as its <see cref="JsonEnum"/> name; any other value (a number, an unknown name) is a
/// <see cref="JsonException"/> that lists the accepted names.
/// </summary>
public sealed class JsonEnumConverter<T> : JsonConverter<T> where T : struct, Enum
{
    public override T Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        string? name = reader.TokenType == JsonTokenType.String ? reader.GetString() : null;
        if (JsonEnum.TryParse(name, out T value)) return value;
        string found = reader.TokenType == JsonTokenType.String ? name! : reader.TokenType.ToString().ToLowerInvariant();
        throw new JsonException(JsonEnum.Expected<T>("the value", found));
    }

    public override void Write(Utf8JsonWriter writer, T value, JsonSerializerOptions options) => writer.WriteStringValue(value.Name());
}
