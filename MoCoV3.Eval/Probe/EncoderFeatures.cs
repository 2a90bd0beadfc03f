using Microsoft.ML;
using Microsoft.ML.Data;
using MoCoV3.Inference;
using MoCoV3.Inference.ML;

namespace MoCoV3.Eval.Probe;

/// <summary>
/// The probe's encoder: an <c>ApplyImageEncoder</c> transformer (image paths → <see cref="ProbeColumns.Embedding"/>) that
/// becomes the first stage of the saved probe, and whose <see cref="ImageEncoder"/> featurizes the data once, batched.
/// </summary>
internal sealed class EncoderFeatures : IDisposable
{
    private EncoderFeatures(ImageEncoderTransformer transformer) => Transformer = transformer;

    public ImageEncoderTransformer Transformer { get; }

    public ImageEncoder Encoder => Transformer.Encoder;

    public string Path => Encoder.Path;

    /// <summary>The embedding width D.</summary>
    public int Dim => Encoder.Dimension;

    /// <summary>Loads the encoder; it must be square with an <c>embedding</c> output (a toolkit export).</summary>
    /// <param name="inputSchema">The saved probe's input: a schema with the image column (paths or encoded images).</param>
    /// <param name="imageColumn">The image column of <paramref name="inputSchema"/>.</param>
    public static EncoderFeatures Open(MLContext ml, string path, DataViewSchema inputSchema, string imageColumn, int? threads)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: encoder ONNX model not found", path);
        var options = new ImageModelOptions { Threads = threads, MaxBatch = 256 };
        var estimator = ml.Transforms.ApplyImageEncoder(path, ProbeColumns.Embedding, imageColumn, options);
        return new EncoderFeatures(estimator.Fit(new EmptyView(inputSchema)));
    }

    /// <summary>A schema with one text column, <see cref="ProbeColumns.ImagePath"/>: what a saved probe of the CLI takes.</summary>
    public static DataViewSchema PathSchema()
    {
        var builder = new DataViewSchema.Builder();
        builder.AddColumn(ProbeColumns.ImagePath, TextDataViewType.Instance);
        return builder.ToSchema();
    }

    /// <summary>Embeds every image of <paramref name="split"/> (decoded 8-bit pixels), batched.</summary>
    public FeatureSet Featurize(PixelSplit split, Action<int>? progress = null)
    {
        if (split.Channels != Encoder.Channels || split.Height != Encoder.InputSize || split.Width != Encoder.InputSize)
            throw new ArgumentException($"{split.Source}: images of {split.Channels}x{split.Height}x{split.Width} do not fit {Path} " +
                                        $"({Encoder.Channels}x{Encoder.InputSize}x{Encoder.InputSize})");
        int dim = Dim, bytes = split.ImageBytes;
        var values = new float[(long)split.Count * dim];
        var preprocessing = Encoder.Preprocessing;
        Encoder.EmbedMany(split.Count,
            (i, destination) => preprocessing.ToInput(split.Pixels.AsSpan(i * bytes, bytes), destination),
            (i, embedding) =>
            {
                embedding.CopyTo(values.AsSpan((int)((long)i * dim), dim));
                if ((i + 1) % Encoder.MaxBatch == 0 || i + 1 == split.Count) progress?.Invoke(i + 1);
            });
        return new FeatureSet(ProbeColumns.Embedding, values, dim, split.Labels, split.ClassNames);
    }

    /// <summary>Embeds the rows of <paramref name="data"/> through the transformer and reads them with their labels.</summary>
    public FeatureSet Featurize(IDataView data, string labelColumn, IReadOnlyList<string> classNames, string source)
    {
        var transformed = Transformer.Transform(data);
        var features = transformed.Schema[ProbeColumns.Embedding];
        var label = transformed.Schema[labelColumn];
        var index = classNames.Select((name, i) => (name, i)).ToDictionary(p => p.name, p => p.i, StringComparer.Ordinal);
        var values = new List<float>();
        var labels = new List<int>();
        using var cursor = transformed.GetRowCursor([features, label]);
        var getFeatures = cursor.GetGetter<VBuffer<float>>(features);
        var getLabel = cursor.GetGetter<ReadOnlyMemory<char>>(label);
        VBuffer<float> vector = default;
        ReadOnlyMemory<char> text = default;
        while (cursor.MoveNext())
        {
            getLabel(ref text);
            string name = text.ToString();
            if (!index.TryGetValue(name, out int k))
                throw new InvalidDataException($"{source}: row {cursor.Position} has the label '{name}', which the training data does not have " +
                                               $"({string.Join(", ", classNames)})");
            getFeatures(ref vector);
            values.AddRange(vector.DenseValues());
            labels.Add(k);
        }
        return new FeatureSet(ProbeColumns.Embedding, values.ToArray(), Dim, labels.ToArray(), classNames);
    }

    public void Dispose() => Transformer.Dispose();

    /// <summary>A view with a schema and no rows: the encoder learns nothing, so fitting only checks the input column.</summary>
    private sealed class EmptyView(DataViewSchema schema) : IDataView
    {
        public bool CanShuffle => false;
        public DataViewSchema Schema => schema;
        public long? GetRowCount() => 0;
        public DataViewRowCursor GetRowCursor(IEnumerable<DataViewSchema.Column> columnsNeeded, Random? rand = null) => throw new NotSupportedException("an empty schema view has no rows");
        public DataViewRowCursor[] GetRowCursorSet(IEnumerable<DataViewSchema.Column> columnsNeeded, int n, Random? rand = null) => [GetRowCursor(columnsNeeded, rand)];
    }
}
