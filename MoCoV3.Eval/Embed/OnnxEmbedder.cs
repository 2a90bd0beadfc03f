using MoCoV3.Data;
using MoCoV3.Inference;

namespace MoCoV3.Eval.Embed;

/// <summary>
/// Embeds the images of a dataset with an exported encoder: the dataset's 8-bit pixels (decoded by the same
/// <see cref="ImageDecoder"/> an application's <see cref="ImageEncoder"/> uses) → the model's input
/// (<see cref="ImagePreprocessing.ToInput"/>) → ONNX Runtime, a batch at a time.
/// </summary>
public sealed class OnnxEmbedder : IDisposable
{
    public const int DefaultBatch = 256;

    private readonly ImageEncoder encoder;

    /// <param name="modelPath">The ONNX file written by <c>mocov3 export</c>.</param>
    /// <param name="device"><c>cpu</c>, <c>cuda</c> or <c>cuda:N</c> (see <see cref="OnnxDevice"/>).</param>
    public OnnxEmbedder(string modelPath, string device = "cpu")
    {
        ArgumentNullException.ThrowIfNull(modelPath);
        if (!File.Exists(modelPath)) throw new FileNotFoundException($"{modelPath}: ONNX encoder not found", modelPath);
        ModelPath = modelPath;
        encoder = ImageEncoder.Load(modelPath, new ImageModelOptions { Device = device }); // refuses a bad model naming it
    }

    public string ModelPath { get; }

    public int Channels => encoder.Channels;

    /// <summary>Height and width of the model's input: datasets are opened at this size.</summary>
    public int ImageSize => encoder.InputSize;

    /// <summary>
    /// The embeddings of the images at <paramref name="indices"/> (all of them when null), in that order, with their labels.
    /// </summary>
    /// <param name="progress">Called with the number of images embedded so far, after each batch.</param>
    public Embeddings Embed(IImageDataset data, IReadOnlyList<int>? indices = null, int batch = DefaultBatch, Action<int>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(data);
        if (batch < 1) throw new ArgumentException($"the batch must be at least 1 image, got {batch}");
        if (data.Channels != Channels || data.Height != ImageSize || data.Width != ImageSize)
            throw new ArgumentException($"{data.Source}: images are {data.Channels}x{data.Height}x{data.Width}, but {ModelPath} " +
                                        $"expects {Channels}x{ImageSize}x{ImageSize}");
        int[] order = indices?.ToArray() ?? Enumerable.Range(0, data.Count).ToArray();
        if (order.Length == 0) throw new ArgumentException($"{data.Source}: no images to embed");

        int imageValues = Channels * ImageSize * ImageSize;
        int dim = encoder.Dimension;
        var bytes = new byte[Math.Min(batch, order.Length) * imageValues];
        var inputs = new float[bytes.Length];
        var labels = new long[order.Length];
        var values = new float[(long)order.Length * dim];
        for (int start = 0; start < order.Length; start += batch)
        {
            int n = Math.Min(batch, order.Length - start);
            var pixels = bytes.AsSpan(0, n * imageValues);
            data.ReadBatch(order.AsSpan(start, n), pixels, labels.AsSpan(start, n));
            encoder.Preprocessing.ToInput(pixels, inputs.AsSpan(0, n * imageValues));
            encoder.EmbedPreprocessed(inputs.AsSpan(0, n * imageValues), n).CopyTo(values, (long)start * dim);
            progress?.Invoke(start + n);
        }
        return new Embeddings(values, labels, order.Length, dim);
    }

    public void Dispose() => encoder.Dispose();
}
