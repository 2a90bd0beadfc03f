using Microsoft.ML.OnnxRuntime;

namespace MoCoV3.Inference;

/// <summary>
/// ONNX Runtime session options for a device name: <c>cpu</c>, or <c>cuda</c> / <c>cuda:N</c> (the CUDA execution
/// provider appended). The toolkit's packages bring the CPU-only <c>Microsoft.ML.OnnxRuntime</c>; CUDA needs the
/// application to reference <see cref="GpuPackage"/> in its place.
/// </summary>
public static class OnnxDevice
{
    public const string CudaProvider = "CUDAExecutionProvider";
    public const string GpuPackage = "Microsoft.ML.OnnxRuntime.Gpu 1.31.0 (CUDA 13, cuDNN 9)";

    /// <exception cref="ArgumentException">Unknown device name.</exception>
    /// <exception cref="InvalidOperationException">CUDA asked for, but this ONNX Runtime has no CUDA provider or it fails to load.</exception>
    public static SessionOptions CreateOptions(string device) => CreateOptions(device, tuned: false, threads: null);

    /// <summary>
    /// Options for <paramref name="device"/> on top of <see cref="OrtCpuOptions.Create"/> (every graph optimisation,
    /// <paramref name="threads"/> intra-op threads, default one per physical core).
    /// </summary>
    public static SessionOptions Create(string device, int? threads = null) => CreateOptions(device, tuned: true, threads);

    private static SessionOptions CreateOptions(string device, bool tuned, int? threads)
    {
        ArgumentNullException.ThrowIfNull(device);
        SessionOptions NewOptions() => tuned ? OrtCpuOptions.Create(threads) : new SessionOptions();
        if (device == "cpu") return NewOptions();
        if (!TryParseCuda(device, out int id))
            throw new ArgumentException($"unknown device '{device}': use cpu, cuda or cuda:N");

        string[] available = OrtEnv.Instance().GetAvailableProviders();
        if (!available.Contains(CudaProvider, StringComparer.Ordinal))
            throw new InvalidOperationException(
                $"device '{device}': this ONNX Runtime has no {CudaProvider} (it has {string.Join(", ", available)}): the CPU-only " +
                $"Microsoft.ML.OnnxRuntime package is loaded. For CUDA, reference {GpuPackage} in the application instead, " +
                "or use the cpu device");
        var options = NewOptions();
        try
        {
            options.AppendExecutionProvider_CUDA(id);
            return options;
        }
        catch (OnnxRuntimeException e)
        {
            options.Dispose();
            throw new InvalidOperationException($"device '{device}': the {CudaProvider} could not start (CUDA 13 and cuDNN 9 libraries " +
                                                $"on the loader path?): {e.Message}", e);
        }
    }

    private static bool TryParseCuda(string device, out int id)
    {
        id = 0;
        if (device == "cuda") return true;
        return device.StartsWith("cuda:", StringComparison.Ordinal) && int.TryParse(device.AsSpan(5), out id) && id >= 0;
    }
}
