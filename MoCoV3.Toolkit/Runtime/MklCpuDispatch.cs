using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.X86;
using System.Text;

namespace MoCoV3.Runtime;

/// <summary>
/// oneMKL, which libtorch links statically for its CPU matrix products, picks its AVX2/AVX-512 kernels only when
/// <c>mkl_serv_intel_cpu_true()</c> says the CPU is an Intel one; on AMD CPUs it falls back to slower generic code
/// although the instructions are there. libtorch calls that function through its PLT (lazily bound), so a library
/// loaded into the global symbol scope before the first matrix product that defines it returning 1 takes its place:
/// the same interposition as the usual <c>LD_PRELOAD</c> workaround, done in-process. MKL still chooses kernels from
/// the CPUID feature bits, so it only uses instructions the CPU has.
/// <para>Measured on a 2-core AMD EPYC (AVX2, no AVX-512), full MoCo v3 step of vit-tiny-fmnist at batch 256:
/// 6.4–6.8 s → 5.6–5.8 s. Applied on AMD x86-64 Linux only; <c>MOCOV3_MKL_AMD=0</c> turns it off.</para>
/// </summary>
public static class MklCpuDispatch
{
    public const string EnvironmentVariable = "MOCOV3_MKL_AMD";
    public const string FunctionName = "mkl_serv_intel_cpu_true";
    public const string Soname = "libmocov3_mkl_cpu_dispatch.so";
    private const int RtldNow = 2, RtldGlobal = 0x100;

    private static readonly object Gate = new();
    private static string? state;

    /// <summary>What happened: <c>on</c>, <c>off (…)</c> or <c>failed (…)</c>; null before <see cref="Apply"/>.</summary>
    public static string? State => state;

    /// <summary>True when this is an AMD x86-64 CPU on Linux, where MKL would otherwise take its generic path.</summary>
    public static bool Applies =>
        OperatingSystem.IsLinux() && RuntimeInformation.ProcessArchitecture == Architecture.X64 && CpuVendor() == "AuthenticAMD";

    /// <summary>Loads the interposing library once per process (idempotent, thread-safe); call before libtorch's
    /// first matrix product. Never throws: a failure only costs speed, and <see cref="State"/> says why.</summary>
    public static string Apply()
    {
        lock (Gate)
        {
            if (state is not null) return state;
            if (Environment.GetEnvironmentVariable(EnvironmentVariable) == "0")
                return state = $"off ({EnvironmentVariable}=0)";
            if (!Applies) return state = "off (not an AMD x86-64 Linux CPU)";
            try
            {
                string path = WriteLibrary();
                try
                {
                    if (dlopen(path, RtldNow | RtldGlobal) == IntPtr.Zero)
                        return state = $"failed ({Marshal.PtrToStringUTF8(dlerror()) ?? "dlopen failed"})";
                    return state = "on";
                }
                finally
                {
                    File.Delete(path); // the mapping stays; nothing is left in the temp folder
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or DllNotFoundException or EntryPointNotFoundException)
            {
                return state = $"failed ({e.Message})";
            }
        }
    }

    /// <summary>Writes the 4 KB library to a new file of its own in the temp folder (created exclusively, owner-only
    /// permissions), so no other user can have put or swapped a library at that path before it is loaded.</summary>
    internal static string WriteLibrary()
    {
        if (!OperatingSystem.IsLinux()) throw new PlatformNotSupportedException("an ELF library is for Linux");
        byte[] bytes = ElfConstantFunctionLibrary.Build(Soname, FunctionName, 1);
        string path = Path.Combine(Path.GetTempPath(), $"mocov3-mkl-{Environment.ProcessId}-{Guid.NewGuid():N}.so");
        var options = new FileStreamOptions
        {
            Mode = FileMode.CreateNew, Access = FileAccess.Write,
            UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute,
        };
        using (var file = new FileStream(path, options)) file.Write(bytes);
        return path;
    }

    private static string CpuVendor()
    {
        if (!X86Base.IsSupported) return "";
        var (_, ebx, ecx, edx) = X86Base.CpuId(0, 0);
        Span<byte> v = stackalloc byte[12];
        BitConverter.TryWriteBytes(v, ebx);
        BitConverter.TryWriteBytes(v[4..], edx);
        BitConverter.TryWriteBytes(v[8..], ecx);
        return Encoding.ASCII.GetString(v);
    }

    [DllImport("libdl.so.2", CharSet = CharSet.Ansi, BestFitMapping = false)]
    private static extern IntPtr dlopen(string file, int mode);

    [DllImport("libdl.so.2")]
    private static extern IntPtr dlerror();
}
