using System.Runtime.InteropServices;

namespace MoCoV3.Runtime;

/// <summary>
/// libtorch's CPU allocator is glibc malloc. A training step allocates and frees the same large activation buffers
/// every iteration; by default glibc serves blocks above its mmap threshold (≤ 32 MB) with fresh <c>mmap</c>s and
/// gives freed heap top back to the OS, so every step page-faults and zero-fills those pages again (≈ 8% of a
/// vit-tiny-fmnist step under <c>perf</c>). For CPU training we keep freed memory in the heap instead:
/// <c>M_MMAP_MAX = 0</c> (no mmap'd blocks; threads other than the main one still mmap blocks over their arena's
/// 64 MB heap size) and a 2 GB trim threshold. Cost: resident memory stays at the peak of
/// the run (+6–35% peak RSS measured: vit-tiny-fmnist bs256 3.3 → 3.6 GB, resnet18-fmnist bs256 4.0 → 5.4 GB).
/// <c>MOCOV3_MALLOC=system</c> keeps glibc's defaults.
/// </summary>
public static class CpuAllocatorTuning
{
    public const string EnvironmentVariable = "MOCOV3_MALLOC";
    private const int MTrimThreshold = -1, MMmapMax = -4;
    private static string? state;

    /// <summary><c>on</c>, <c>off (…)</c> or <c>failed (…)</c>; null before <see cref="Apply"/>.</summary>
    public static string? State => state;

    /// <summary>Applies the settings once per process; never throws.</summary>
    public static string Apply()
    {
        if (state is not null) return state;
        if (Environment.GetEnvironmentVariable(EnvironmentVariable) == "system")
            return state = $"off ({EnvironmentVariable}=system)";
        if (!OperatingSystem.IsLinux()) return state = "off (not Linux)";
        try
        {
            bool ok = mallopt(MMmapMax, 0) == 1 && mallopt(MTrimThreshold, int.MaxValue) == 1;
            return state = ok ? "on" : "failed (mallopt refused)";
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return state = $"failed ({e.Message})"; // not glibc (e.g. musl): nothing to tune
        }
    }

    [DllImport("libc")]
    private static extern int mallopt(int param, int value);
}
