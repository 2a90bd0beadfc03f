using Microsoft.ML.OnnxRuntime;

namespace MoCoV3.Export;

/// <summary>
/// An exported model in ONNX Runtime: float32 pixels <c>[N, C, H, W]</c> in [0, 1] in, every output (<c>embedding</c>,
/// and <c>logits</c> when there is a head) out as flat float32 arrays. Load from a path when the model has external data.
/// Without options the session uses <see cref="OrtCpuOptions.Create"/>.
/// </summary>
public sealed class OnnxModelRunner : IDisposable
{
    private readonly InferenceSession session;

    public OnnxModelRunner(string path, SessionOptions? options = null)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: ONNX model not found", path);
        session = Open(options, o => new InferenceSession(path, o));
        (Channels, Height, Width) = InputShape();
    }

    public OnnxModelRunner(byte[] model, SessionOptions? options = null)
    {
        session = Open(options, o => new InferenceSession(model, o));
        (Channels, Height, Width) = InputShape();
    }

    public int Channels { get; }
    public int Height { get; }
    public int Width { get; }

    public IReadOnlyList<string> OutputNames => session.OutputNames;

    /// <summary>The model's <c>metadata_props</c>.</summary>
    public IReadOnlyDictionary<string, string> Metadata => session.ModelMetadata.CustomMetadataMap;

    /// <summary>The model's <see cref="OnnxMetadata.Precision"/>: <c>fp32</c> (also when absent), <c>fp16</c> or <c>int8-dynamic</c>.</summary>
    public string Precision => Metadata.TryGetValue(OnnxMetadata.Precision, out var p) ? p : "fp32";

    /// <summary>Runs <paramref name="batch"/> images; returns each output by name.</summary>
    public IReadOnlyDictionary<string, float[]> Run(float[] pixels, int batch)
    {
        ArgumentNullException.ThrowIfNull(pixels);
        long per = (long)Channels * Height * Width;
        if (batch <= 0 || pixels.LongLength != batch * per)
            throw new ArgumentException($"{pixels.LongLength} pixel values are not {batch} images of {Channels}x{Height}x{Width}");
        using var input = OrtValue.CreateTensorValueFromMemory(pixels, [batch, Channels, Height, Width]);
        using var runOptions = new RunOptions();
        var names = session.OutputNames;
        using var outputs = session.Run(runOptions, [OnnxMetadata.InputName], [input], names);
        var result = new Dictionary<string, float[]>(StringComparer.Ordinal);
        for (int i = 0; i < names.Count; i++)
            result[names[i]] = outputs[i].GetTensorDataAsSpan<float>().ToArray();
        return result;
    }

    /// <summary>Just the <c>embedding</c> output, <c>[batch * D]</c>.</summary>
    public float[] Embed(float[] pixels, int batch) => Run(pixels, batch)[OnnxMetadata.EmbeddingName];

    /// <summary>Opens the session with <paramref name="options"/>, or with <see cref="OrtCpuOptions.Create"/> when null.</summary>
    private static InferenceSession Open(SessionOptions? options, Func<SessionOptions, InferenceSession> open)
    {
        if (options is not null) return open(options);
        using var tuned = OrtCpuOptions.Create();
        return open(tuned);
    }

    private (int, int, int) InputShape()
    {
        if (!session.InputMetadata.TryGetValue(OnnxMetadata.InputName, out var meta) || meta.Dimensions.Length != 4)
            throw new InvalidDataException($"the model has no 4-D input named '{OnnxMetadata.InputName}'");
        return (meta.Dimensions[1], meta.Dimensions[2], meta.Dimensions[3]);
    }

    public void Dispose() => session.Dispose();
}
