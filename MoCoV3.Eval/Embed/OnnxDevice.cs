using Microsoft.ML.OnnxRuntime;

namespace MoCoV3.Eval.Embed;

/// <summary>
/// ONNX Runtime session options for a device name: <c>cpu</c>, or <c>cuda</c> / <c>cuda:N</c> (the CUDA execution
/// provider appended). The toolkit ships the CPU-only <c>Microsoft.ML.OnnxRuntime</c> package; CUDA needs
/// <see cref="GpuPackage"/> in its place.
/// </summary>
public static class OnnxDevice
{
    public const string CudaProvider = "CUDAExecutionProvider";
    public const string GpuPackage = "Microsoft.ML.OnnxRuntime.Gpu 1.31.0 (CUDA 13, cuDNN 9)";

    /// <exception cref="ArgumentException">Unknown device name.</exception>
    /// <exception cref="InvalidOperationException">CUDA asked for, but this ONNX Runtime has no CUDA provider or it fails to load.</exception>
    public static SessionOptions CreateOptions(string device)
    {
        ArgumentNullException.ThrowIfNull(device);
        if (device == "cpu") return new SessionOptions();
        if (!TryParseCuda(device, out int id))
            throw new ArgumentException($"unknown device '{device}': use cpu, cuda or cuda:N");

        string[] available = OrtEnv.Instance().GetAvailableProviders();
        if (!available.Contains(CudaProvider, StringComparer.Ordinal))
            throw new InvalidOperationException(
                $"--device {device}: this ONNX Runtime has no {CudaProvider} (it has {string.Join(", ", available)}); the toolkit is built " +
                $"with the CPU-only Microsoft.ML.OnnxRuntime package. For CUDA, reference {GpuPackage} instead of Microsoft.ML.OnnxRuntime " +
                "(in Directory.Packages.props and MoCoV3.Export.csproj) and rebuild, or use --device cpu");
        var options = new SessionOptions();
        try
        {
            options.AppendExecutionProvider_CUDA(id);
            return options;
        }
        catch (OnnxRuntimeException e)
        {
            options.Dispose();
            throw new InvalidOperationException($"--device {device}: the {CudaProvider} could not start (CUDA 13 and cuDNN 9 libraries " +
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
