using System.Runtime.Intrinsics.X86;

namespace MoCoV3.Export.Quantization;

/// <summary>How <see cref="DynamicInt8Quantizer"/> quantises a model.</summary>
public sealed record Int8QuantizeOptions
{
    /// <summary>
    /// Weights in 7 bits (−63..63) instead of 8 (−127..127). ONNX Runtime multiplies uint8 activations by int8 weights;
    /// on x64 CPUs without VNNI its AVX2/AVX-512BW kernels add two u8·s8 products into one int16, which saturates for
    /// full-range values (255·127·2 &gt; 32767). One bit less of weight keeps every pair sum in range (255·63·2 = 32130).
    /// Default: on for x64 CPUs without AVX-VNNI / AVX512-VNNI, off elsewhere.
    /// </summary>
    public bool ReduceRange { get; init; } = DefaultReduceRange;

    /// <summary>MatMuls whose weight has fewer elements than this stay float32 (quantising a tiny product costs more than it saves).</summary>
    public long MinWeightElements { get; init; }

    /// <summary>Whether this CPU needs <see cref="ReduceRange"/> (x64 without a VNNI dot-product instruction).</summary>
    public static bool DefaultReduceRange { get; } =
        (X86Base.IsSupported || X86Base.X64.IsSupported) && !AvxVnni.IsSupported && !Avx512Vnni();

    private static bool Avx512Vnni()
    {
        // /proc/cpuinfo names the flag avx512_vnni; .NET exposes AVX-VNNI (the VEX form) as AvxVnni.
        try
        {
            return OperatingSystem.IsLinux() && File.Exists("/proc/cpuinfo")
                && File.ReadLines("/proc/cpuinfo").Any(l => l.StartsWith("flags", StringComparison.Ordinal) && l.Contains(" avx512_vnni", StringComparison.Ordinal));
        }
        catch (IOException)
        {
            return false;
        }
    }

    internal void Validate()
    {
        if (MinWeightElements < 0) throw new ArgumentException($"minimum weight elements must be >= 0, found {MinWeightElements}");
    }
}
