using Microsoft.ML.OnnxRuntime;

namespace MoCoV3.Inference;

/// <summary>
/// An exported model in ONNX Runtime: float32 pixels <c>[N, C, H, W]</c> in [0, 1] in, every output (<c>embedding</c>,
/// and <c>logits</c> when there is a head) out as flat float32 arrays. Load from a path when the model has external data.
/// Without options the session uses <see cref="OrtCpuOptions.Create"/>. The model is parsed and checked in managed code
/// (<see cref="OnnxModelFile"/>) before ONNX Runtime loads it; every refusal, ONNX Runtime's included, is an
/// <see cref="InvalidDataException"/> that names the file.
/// </summary>
public sealed class OnnxModelRunner : IDisposable
{
    private const string InMemory = "(in-memory ONNX model)";

    private readonly InferenceSession session;
    private readonly string source;

    /// <exception cref="FileNotFoundException">No file at <paramref name="path"/>.</exception>
    /// <exception cref="InvalidDataException">Not a well-formed ONNX model, or one ONNX Runtime does not load.</exception>
    public OnnxModelRunner(string path, SessionOptions? options = null)
    {
        OnnxModelFile.Read(path);
        source = path;
        session = Open(path, options, o => new InferenceSession(path, o));
        (Channels, Height, Width) = InputShapeOrDispose();
    }

    /// <exception cref="InvalidDataException">Not a well-formed ONNX model (external data is not allowed), or one ONNX Runtime does not load.</exception>
    public OnnxModelRunner(byte[] model, SessionOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        OnnxModelFile.Check(InMemory, model, folder: null);
        source = InMemory;
        session = Open(InMemory, options, o => new InferenceSession(model, o));
        (Channels, Height, Width) = InputShapeOrDispose();
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
        using var outputs = Guard("cannot run the model", () => session.Run(runOptions, [OnnxMetadata.InputName], [input], names));
        var result = new Dictionary<string, float[]>(StringComparer.Ordinal);
        for (int i = 0; i < names.Count; i++)
            result[names[i]] = outputs[i].GetTensorDataAsSpan<float>().ToArray();
        return result;
    }

    /// <summary>Just the <c>embedding</c> output, <c>[batch * D]</c>.</summary>
    public float[] Embed(float[] pixels, int batch) => Run(pixels, batch)[OnnxMetadata.EmbeddingName];

    /// <summary>Opens the session with <paramref name="options"/>, or with <see cref="OrtCpuOptions.Create"/> when null.</summary>
    private static InferenceSession Open(string source, SessionOptions? options, Func<SessionOptions, InferenceSession> open)
    {
        return Guard(source, "ONNX Runtime cannot load the model", () =>
        {
            if (options is not null) return open(options);
            using var tuned = OrtCpuOptions.Create();
            return open(tuned);
        });
    }

    private T Guard<T>(string what, Func<T> action) => Guard(source, what, action);

    /// <summary>Runs <paramref name="action"/>, turning ONNX Runtime's errors into an <see cref="InvalidDataException"/> naming the model.</summary>
    private static T Guard<T>(string source, string what, Func<T> action)
    {
        try
        {
            return action();
        }
        catch (OnnxRuntimeException e)
        {
            throw new InvalidDataException($"{source}: {what}: {e.Message}", e);
        }
    }

    private (int, int, int) InputShapeOrDispose()
    {
        try
        {
            return InputShape();
        }
        catch
        {
            session.Dispose();
            throw;
        }
    }

    private (int, int, int) InputShape()
    {
        if (!session.InputMetadata.TryGetValue(OnnxMetadata.InputName, out var meta) || meta.Dimensions.Length != 4)
            throw new InvalidDataException($"{source}: the model has no 4-D input named '{OnnxMetadata.InputName}'");
        int[] d = meta.Dimensions;
        if (d[1] < 1 || d[2] < 1 || d[3] < 1)
            throw new InvalidDataException($"{source}: the input '{OnnxMetadata.InputName}' has the shape [{string.Join(",", d)}]; expected fixed channels, height and width");
        return (d[1], d[2], d[3]);
    }

    public void Dispose() => session.Dispose();
}
