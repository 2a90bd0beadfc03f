using static TorchSharp.torch;

namespace MoCoV3.Checkpoints;

/// <summary>One tensor of a safetensors header: its dtype, shape and byte range in the data section (checked against each other).</summary>
/// <param name="Name">The tensor's key.</param>
/// <param name="DType">The safetensors dtype name (<c>F32</c>, <c>F16</c>, <c>BF16</c>, <c>F64</c>, <c>I64</c>).</param>
/// <param name="Shape">Row-major shape; <c>[]</c> is a scalar.</param>
/// <param name="Begin">First byte, relative to the start of the data section.</param>
/// <param name="End">One past the last byte; <c>End - Begin</c> = elements × element size.</param>
public sealed record SafeTensorsEntry(string Name, string DType, long[] Shape, long Begin, long End)
{
    /// <summary>The dtypes read and written here, with their TorchSharp type and size in bytes.</summary>
    internal static readonly IReadOnlyDictionary<string, (ScalarType Type, int Size)> Supported =
        new Dictionary<string, (ScalarType, int)>(StringComparer.Ordinal)
        {
            ["F32"] = (ScalarType.Float32, 4),
            ["F16"] = (ScalarType.Float16, 2),
            ["BF16"] = (ScalarType.BFloat16, 2),
            ["F64"] = (ScalarType.Float64, 8),
            ["I64"] = (ScalarType.Int64, 8),
        };

    /// <summary>The other dtypes of the safetensors format: valid files, but no checkpoint this toolkit reads holds them.</summary>
    internal static readonly IReadOnlySet<string> Known =
        new HashSet<string>(["BOOL", "U8", "I8", "I16", "U16", "I32", "U32", "U64", "F8_E5M2", "F8_E4M3", "F8_E8M0", "F4", "F6_E2M3", "F6_E3M2", "C64"], StringComparer.Ordinal);

    public ScalarType Type => Supported[DType].Type;

    public long ByteLength => End - Begin;
}

/// <summary>The parsed, checked header of a safetensors file: the tensors in header order, the <c>__metadata__</c> strings and where the data starts.</summary>
/// <param name="Entries">Every tensor, in the order the header lists them.</param>
/// <param name="Metadata">The <c>__metadata__</c> map (empty when absent).</param>
/// <param name="DataStart">The file offset of the data section: 8 + the header length.</param>
public sealed record SafeTensorsHeader(IReadOnlyList<SafeTensorsEntry> Entries, IReadOnlyDictionary<string, string> Metadata, long DataStart);
