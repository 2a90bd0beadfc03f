using MoCoV3.Inference;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.Transforms.Onnx;
using MoCoV3.Export;

namespace MoCoV3.Eval.Probe;

/// <summary>
/// The exported encoder as an ML.NET <see cref="OnnxTransformer"/>: <see cref="ProbeColumns.Pixels"/> in,
/// <see cref="ProbeColumns.Embedding"/> out. The same fitted transformer featurizes the data for training and becomes
/// the first stage of the saved model, so the saved model takes raw pixels.
/// </summary>
internal sealed class EncoderFeaturizer : IDisposable
{
    private EncoderFeaturizer(string path, int channels, int height, int width, int dim, IReadOnlyDictionary<string, string> metadata,
                              OnnxTransformer transformer)
    {
        Path = path;
        Channels = channels;
        Height = height;
        Width = width;
        Dim = dim;
        Metadata = metadata;
        Transformer = transformer;
    }

    public string Path { get; }
    public int Channels { get; }
    public int Height { get; }
    public int Width { get; }

    /// <summary>The embedding width D.</summary>
    public int Dim { get; }

    /// <summary>The model's <c>metadata_props</c>.</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    public OnnxTransformer Transformer { get; }

    /// <summary>
    /// Loads and checks the encoder: ONNX Runtime must load it, it must have the 4-D input <c>input</c> with square images
    /// and the output <c>embedding</c>; one blank image is run to learn D. ML.NET's OnnxTransformer runs one image per
    /// ONNX Runtime call; <see cref="Featurize"/> runs one slice of the images per core side by side, asking for one
    /// intra-op thread per call. Measured on 2 cores (vit-tiny-fmnist): one slice already kept both cores busy (user CPU
    /// about twice the wall time) at 338 img/s, two slices gave 334 img/s on the idle machine, so the slices neither
    /// help nor hurt there; ONNX Runtime inside ML.NET uses both cores either way.
    /// </summary>
    /// <exception cref="FileNotFoundException">No file at <paramref name="path"/>.</exception>
    /// <exception cref="InvalidDataException">Not an ONNX model ONNX Runtime loads, or not an encoder of this toolkit's contract.</exception>
    public static EncoderFeaturizer Open(MLContext ml, string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: encoder ONNX model not found", path);
        int channels, height, width, dim;
        IReadOnlyDictionary<string, string> metadata;
        try
        {
            using var runner = new OnnxModelRunner(path);
            if (!runner.OutputNames.Contains(OnnxMetadata.EmbeddingName))
                throw new InvalidDataException($"{path}: the model has no output named '{OnnxMetadata.EmbeddingName}' " +
                                               $"(outputs: {string.Join(", ", runner.OutputNames)}); export it with `mocov3 export`");
            (channels, height, width) = (runner.Channels, runner.Height, runner.Width);
            if (channels <= 0 || height <= 0 || width <= 0)
                throw new InvalidDataException($"{path}: the input '{OnnxMetadata.InputName}' must have a fixed [C,H,W], found [{channels},{height},{width}]");
            if (height != width)
                throw new InvalidDataException($"{path}: expected square input images, found {height}x{width}");
            dim = runner.Embed(new float[channels * height * width], 1).Length;
            metadata = new Dictionary<string, string>(runner.Metadata);
        }
        catch (OnnxRuntimeException e)
        {
            throw new InvalidDataException($"{path}: not an ONNX model that ONNX Runtime can load or run ({FirstLine(e.Message)})", e);
        }
        catch (InvalidDataException e) when (!e.Message.StartsWith(path, StringComparison.Ordinal))
        {
            throw new InvalidDataException($"{path}: {e.Message}", e);
        }

        var options = new OnnxOptions
        {
            ModelFile = path,
            InputColumns = [ProbeColumns.Pixels],
            OutputColumns = [ProbeColumns.Embedding],
            ShapeDictionary = new Dictionary<string, int[]> { [OnnxMetadata.InputName] = [1, channels, height, width] },
            FallbackToCpu = true,
            IntraOpNumThreads = 1,
            InterOpNumThreads = 1,
        };
        var estimator = ml.Transforms.ApplyOnnxModel(options);
        var empty = ml.Data.LoadFromEnumerable(Array.Empty<PixelSplit.PixelRow>(), PixelSplit.RowSchema(channels * height * width));
        return new EncoderFeaturizer(path, channels, height, width, dim, metadata, estimator.Fit(empty));
    }

    /// <summary>
    /// Runs every image of <paramref name="split"/> through the ML.NET transformer once, <paramref name="threads"/> slices
    /// side by side, and keeps the embeddings.
    /// </summary>
    public FeatureSet Featurize(MLContext ml, PixelSplit split, int threads)
    {
        if (split.ImageBytes != Channels * Height * Width)
            throw new ArgumentException($"{split.Source}: images of {split.Channels}x{split.Height}x{split.Width} do not fit {Path} ({Channels}x{Height}x{Width})");
        var values = new float[(long)split.Count * Dim];
        int slices = Math.Clamp(threads, 1, split.Count);
        int per = (split.Count + slices - 1) / slices;
        var views = Enumerable.Range(0, slices)
            .Select(s => (Start: s * per, Count: Math.Min(per, split.Count - s * per)))
            .Where(s => s.Count > 0)
            .Select(s => (s.Start, View: Transformer.Transform(split.ToDataView(ml, s.Start, s.Count))))
            .ToArray();
        Parallel.ForEach(views, new ParallelOptions { MaxDegreeOfParallelism = slices }, slice =>
        {
            var column = slice.View.Schema[ProbeColumns.Embedding];
            using var cursor = slice.View.GetRowCursor([column]);
            var getter = cursor.GetGetter<VBuffer<float>>(column);
            VBuffer<float> embedding = default;
            long row = slice.Start;
            while (cursor.MoveNext())
            {
                getter(ref embedding);
                if (embedding.Length != Dim)
                    throw new InvalidDataException($"{Path}: expected an embedding of {Dim} values, found {embedding.Length}");
                embedding.DenseValues().ToArray().CopyTo(values.AsSpan((int)(row * Dim), Dim));
                row++;
            }
        });
        return new FeatureSet(ProbeColumns.Embedding, values, Dim, split.Labels, split.ClassNames);
    }

    private static string FirstLine(string message) => message.Split('\n')[0].Trim();

    public void Dispose() => Transformer.Dispose();
}
