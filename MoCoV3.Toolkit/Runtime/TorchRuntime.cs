using System.Runtime.InteropServices;
using TorchSharp;
using static TorchSharp.torch;

namespace MoCoV3.Runtime;

/// <summary>
/// Chooses the compute device. CPU uses the libtorch shipped with the toolkit. CUDA needs a CUDA build of
/// libtorch on the machine (the <c>libtorch-cuda</c> NuGet packages are not used): a PyTorch installation's
/// <c>torch/lib</c> works. It is found from <c>--libtorch DIR</c>, else the <c>MOCOV3_LIBTORCH</c> environment
/// variable, else whatever the dynamic loader finds (e.g. <c>LD_LIBRARY_PATH</c>).
/// </summary>
public static class TorchRuntime
{
    public const string LibTorchEnvironmentVariable = "MOCOV3_LIBTORCH";

    // Dependency order: each library's own libtorch dependencies come first, so that the dynamic loader
    // binds later ones (and libLibTorchSharp) to these copies by soname rather than to the CPU build.
    private static readonly string[] CudaLibraries =
        ["libc10.so", "libc10_cuda.so", "libtorch_cpu.so", "libtorch_cuda.so", "libtorch.so"];

    /// <summary>Initialises libtorch as <paramref name="compute"/> says (see <see cref="Initialize(string, string?, int?, bool)"/>).</summary>
    public static Device Initialize(ComputeOptions compute, bool training = false) =>
        Initialize(compute.Device, compute.LibTorch, compute.Threads, training);

    /// <summary>
    /// Initialises libtorch for <paramref name="device"/> (<c>cpu</c>, <c>cuda</c> or <c>cuda:N</c>) and returns it.
    /// Before libtorch's first matrix product it lets MKL use its fast kernels on AMD CPUs
    /// (<see cref="MklCpuDispatch"/>); with <paramref name="training"/> on the CPU it also keeps freed activation
    /// memory in the heap (<see cref="CpuAllocatorTuning"/>).
    /// </summary>
    public static Device Initialize(string device, string? libtorchDir = null, int? threads = null, bool training = false)
    {
        bool wantCuda = device.StartsWith("cuda", StringComparison.Ordinal);
        if (device != "cpu" && !wantCuda)
            throw new ArgumentException($"unknown device '{device}': use cpu, cuda or cuda:N");
        MklCpuDispatch.Apply();
        if (training && !wantCuda) CpuAllocatorTuning.Apply();

        // The CUDA libraries must be loaded before anything touches libtorch, or the CPU build next to us wins.
        libtorchDir ??= Environment.GetEnvironmentVariable(LibTorchEnvironmentVariable);
        if (wantCuda && !string.IsNullOrEmpty(libtorchDir)) PreloadCudaLibTorch(libtorchDir);
        try
        {
            set_num_threads(threads is > 0 ? threads.Value : Environment.ProcessorCount);
        }
        catch (Exception e) when (e is DllNotFoundException or TypeInitializationException)
        {
            throw new InvalidOperationException(
                "libtorch could not be loaded: this build has no libtorch of its own (published with -p:MoCoV3LibTorch=none?) and none " +
                $"was found. Set --libtorch or {LibTorchEnvironmentVariable} to a libtorch folder (e.g. PyTorch's torch/lib). ({e.GetBaseException().Message.Split('\n')[0].Trim()})", e);
        }
        if (!wantCuda) return CPU;

        bool ok;
        try
        {
            ok = TryInitializeDeviceType(DeviceType.CUDA) && cuda.is_available();
        }
        catch (Exception e) when (e is DllNotFoundException or NotSupportedException or InvalidOperationException)
        {
            ok = false;
        }
        if (!ok)
            throw new InvalidOperationException(
                "CUDA is not available: no CUDA build of libtorch could be loaded or no GPU is visible. " +
                $"Point --libtorch (or {LibTorchEnvironmentVariable}) at a CUDA libtorch folder, e.g. the torch/lib folder of a PyTorch " +
                "installation (python3 -c \"import torch,os; print(os.path.dirname(torch.__file__)+'/lib')\"), and check nvidia-smi.");
        return new Device(device);
    }

    private static void PreloadCudaLibTorch(string dir)
    {
        if (!Directory.Exists(dir))
            throw new DirectoryNotFoundException($"{dir}: libtorch folder not found (--libtorch / {LibTorchEnvironmentVariable})");
        string cuda = Path.Combine(dir, "libtorch_cuda.so");
        if (!File.Exists(cuda))
            throw new FileNotFoundException($"{dir}: no libtorch_cuda.so here; this is not a CUDA build of libtorch", cuda);
        foreach (var name in CudaLibraries)
        {
            string path = Path.Combine(dir, name);
            if (File.Exists(path)) NativeLibrary.Load(path);
        }
    }

    /// <summary>Human-readable description of the compute setup, for logs and config.json.</summary>
    public static string Describe(Device device) =>
        device.type == DeviceType.CUDA
            ? $"cuda ({cuda.device_count()} device(s))"
            : $"cpu ({get_num_threads()} threads{CpuTuning()})";

    private static string CpuTuning() =>
        (MklCpuDispatch.State == "on" ? ", MKL AMD dispatch" : "") + (CpuAllocatorTuning.State == "on" ? ", malloc tuned" : "");
}
