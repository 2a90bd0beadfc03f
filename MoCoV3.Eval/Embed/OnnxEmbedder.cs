using MoCoV3.Inference;
using MoCoV3.Data;
using MoCoV3.Export;

namespace MoCoV3.Eval.Embed;

/// <summary>
/// Embeds the images of a dataset with an exported encoder in ONNX Runtime: uint8 pixels → float32 in [0, 1] →
/// the model's <c>embedding</c> output (the model normalises with its own mean and std).
/// </summary>
public sealed class OnnxEmbedder : IDisposable
{
    public const int DefaultBatch = 256;

    private readonly OnnxModelRunner runner;

    /// <param name="modelPath">The ONNX file written by <c>mocov3 export</c>.</param>
    /// <param name="device"><c>cpu</c>, <c>cuda</c> or <c>cuda:N</c> (see <see cref="OnnxDevice"/>).</param>
    public OnnxEmbedder(string modelPath, string device = "cpu")
    {
        ArgumentNullException.ThrowIfNull(modelPath);
        if (!File.Exists(modelPath)) throw new FileNotFoundException($"{modelPath}: ONNX encoder not found", modelPath);
        ModelPath = modelPath;
        using var options = OnnxDevice.CreateOptions(device);
        runner = new OnnxModelRunner(modelPath, options); // refuses a bad model with an InvalidDataException naming it
        if (!runner.OutputNames.Contains(OnnxMetadata.EmbeddingName))
            throw new InvalidDataException($"{modelPath}: the model has no output '{OnnxMetadata.EmbeddingName}' " +
                                           $"(outputs: {string.Join(", ", runner.OutputNames)}); export it with `mocov3 export`");
        if (runner.Height != runner.Width || runner.Height < 1)
            throw new InvalidDataException($"{modelPath}: expected a square input of fixed size, found {runner.Height}x{runner.Width}");
    }

    public string ModelPath { get; }
    public int Channels => runner.Channels;

    /// <summary>Height and width of the model's input: datasets are opened at this size.</summary>
    public int ImageSize => runner.Height;

    /// <summary>
    /// The embeddings of the images at <paramref name="indices"/> (all of them when null), in that order, with their labels.
    /// </summary>
    /// <param name="progress">Called with the number of images embedded so far, after each batch.</param>
    public Embeddings Embed(IImageDataset data, IReadOnlyList<int>? indices = null, int batch = DefaultBatch, Action<int>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(data);
        if (batch < 1) throw new ArgumentException($"the batch must be at least 1 image, got {batch}");
        if (data.Channels != Channels || data.Height != runner.Height || data.Width != runner.Width)
            throw new ArgumentException($"{data.Source}: images are {data.Channels}x{data.Height}x{data.Width}, but {ModelPath} " +
                                        $"expects {Channels}x{runner.Height}x{runner.Width}");
        int[] order = indices?.ToArray() ?? Enumerable.Range(0, data.Count).ToArray();
        if (order.Length == 0) throw new ArgumentException($"{data.Source}: no images to embed");

        int imageValues = Channels * runner.Height * runner.Width;
        var bytes = new byte[Math.Min(batch, order.Length) * imageValues];
        var pixels = new float[bytes.Length];
        var labels = new long[order.Length];
        float[]? values = null;
        int dim = 0;
        for (int start = 0; start < order.Length; start += batch)
        {
            int n = Math.Min(batch, order.Length - start);
            var span = bytes.AsSpan(0, n * imageValues);
            data.ReadBatch(order.AsSpan(start, n), span, labels.AsSpan(start, n));
            float[] input = n * imageValues == pixels.Length ? pixels : new float[n * imageValues];
            for (int i = 0; i < span.Length; i++) input[i] = span[i] / 255f;
            float[] embedding = runner.Embed(input, n);
            if (values is null)
            {
                dim = embedding.Length / n;
                values = new float[(long)order.Length * dim];
            }
            embedding.CopyTo(values, (long)start * dim);
            progress?.Invoke(start + n);
        }
        return new Embeddings(values!, labels, order.Length, dim);
    }

    public void Dispose() => runner.Dispose();
}
