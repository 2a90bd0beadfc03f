using System.Runtime.InteropServices;
using MoCoV3.Runtime;
using static TorchSharp.torch;

namespace MoCoV3.Tests.Runtime;

[TestClass]
public sealed class CpuTuningTests
{
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    private delegate int IntFunction();

    [TestMethod]
    public void GeneratedElfLibraryLoadsAndItsFunctionReturnsTheConstant()
    {
        string path = Path.Combine(Path.GetTempPath(), $"mocov3-elf-test-{Environment.ProcessId}.so");
        try
        {
            File.WriteAllBytes(path, ElfConstantFunctionLibrary.Build("libmocov3_test.so", "mocov3_test_answer", 42));
            IntPtr handle = dlopen(path, RtldNow); // local scope: nothing else in the process sees it
            Assert.AreNotEqual(IntPtr.Zero, handle, Marshal.PtrToStringUTF8(dlerror()));
            IntPtr f = dlsym(handle, "mocov3_test_answer");
            Assert.AreNotEqual(IntPtr.Zero, f);
            Assert.AreEqual(42, Marshal.GetDelegateForFunctionPointer<IntFunction>(f)());
            Assert.AreEqual(IntPtr.Zero, dlsym(handle, "mocov3_not_there"));
        }
        finally
        {
            File.Delete(path);
        }
    }

    [TestMethod]
    public void OnAmdMklsIntelCheckIsAnsweredByOurLibraryAndProductsStayExact()
    {
        string state = MklCpuDispatch.Apply();
        if (MklCpuDispatch.Applies && Environment.GetEnvironmentVariable(MklCpuDispatch.EnvironmentVariable) != "0")
        {
            Assert.AreEqual("on", state);
            // The global scope (what libtorch's PLT binds to) now answers with our function, which returns 1.
            IntPtr f = dlsym(IntPtr.Zero, MklCpuDispatch.FunctionName);
            Assert.AreNotEqual(IntPtr.Zero, f);
            Assert.AreEqual(1, Marshal.GetDelegateForFunctionPointer<IntFunction>(f)());
            IntPtr ours = dlopen(MklCpuDispatch.Soname, RtldNow | RtldNoLoad); // found by its DT_SONAME
            Assert.AreNotEqual(IntPtr.Zero, ours, "our library should already be loaded");
            Assert.AreEqual(dlsym(ours, MklCpuDispatch.FunctionName), f);
        }
        else
        {
            StringAssert.StartsWith(state, "off");
        }

        // Whatever kernels MKL now picks, float32 products agree with float64 ones.
        TorchRuntime.Initialize("cpu");
        using var g = manual_seed(7);
        using var a = randn(517, 193);
        using var b = randn(193, 301);
        using var c = matmul(a, b);
        using var exact = matmul(a.to(ScalarType.Float64), b.to(ScalarType.Float64));
        double err = (c.to(ScalarType.Float64) - exact).abs().max().item<double>();
        double scale = exact.abs().max().item<double>();
        Assert.IsTrue(err / scale < 1e-5, $"relative error {err / scale:G3}");
    }

    [TestMethod]
    public void TunedAllocatorKeepsLargeBlocksOutOfMmap()
    {
        string state = CpuAllocatorTuning.Apply();
        if (Environment.GetEnvironmentVariable(CpuAllocatorTuning.EnvironmentVariable) == "system")
        {
            StringAssert.StartsWith(state, "off");
            return;
        }
        Assert.AreEqual("on", state);
        long before = (long)mallinfo2().hblkhd;
        // Above glibc's largest default mmap threshold (32 MB) and below the size of a thread arena's heap (64 MB),
        // which a test thread (not the process's main thread) allocates from.
        IntPtr block = malloc(40 << 20);
        try
        {
            Assert.AreNotEqual(IntPtr.Zero, block);
            Assert.AreEqual(before, (long)mallinfo2().hblkhd, "a 40 MB block was mmap'd despite M_MMAP_MAX = 0");
        }
        finally
        {
            free(block);
        }
    }

    private const int RtldNow = 2, RtldNoLoad = 4, RtldGlobal = 0x100;

    [StructLayout(LayoutKind.Sequential)]
    private struct MallInfo2
    {
        public nuint arena, ordblks, smblks, hblks, hblkhd, usmblks, fsmblks, uordblks, fordblks, keepcost;
    }

    [DllImport("libdl.so.2")] private static extern IntPtr dlopen(string file, int mode);
    [DllImport("libdl.so.2")] private static extern IntPtr dlsym(IntPtr handle, string name);
    [DllImport("libdl.so.2")] private static extern IntPtr dlerror();
    [DllImport("libc")] private static extern MallInfo2 mallinfo2();
    [DllImport("libc")] private static extern IntPtr malloc(nuint size);
    [DllImport("libc")] private static extern void free(IntPtr p);
}
