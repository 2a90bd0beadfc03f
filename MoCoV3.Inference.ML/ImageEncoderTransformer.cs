using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms.Image;

namespace MoCoV3.Inference.ML;

/// <summary>
/// The fitted <see cref="ImageEncoderEstimator"/>: adds the embedding column. <see cref="Transform"/> returns a lazy view
/// whose cursor reads the image column ahead, <see cref="ImageModelOptions.MaxBatch"/> rows at a time, decodes that batch
/// in parallel and runs it through ONNX Runtime in one call (ML.NET's <c>ApplyOnnxModel</c> runs one row per call); a
/// <c>PredictionEngine</c> gets a row mapper that embeds its one row.
/// <para>
/// Saving: ML.NET 5 gives components outside its own assemblies no public way to write a transformer of their own into a
/// model zip (the save and load contexts are internal; dotnet/machinelearning#4911). So <c>mlContext.Model.Save</c>
/// writes this transformer as an equivalent chain of ML.NET's own savable transforms — the preprocessing settings
/// (<c>Expression</c>), the toolkit's decoder (<c>CustomMapping</c>, contract <see cref="PortableImageEncoder.DecodeContract"/>)
/// and the encoder inside an <c>OnnxTransformer</c> (the ONNX bytes go into the zip). A reloaded model gives the same
/// embeddings; it runs the encoder one row at a time, as <c>ApplyOnnxModel</c> does.
/// </para>
/// </summary>
public sealed class ImageEncoderTransformer : ITransformer, IDisposable
{
    private readonly byte[] modelBytes;

    internal ImageEncoderTransformer(ImageEncoder encoder, string modelPath, ImageModelOptions? options, string outputColumnName, string inputColumnName)
    {
        Encoder = encoder;
        Options = options ?? new ImageModelOptions();
        OutputColumnName = outputColumnName;
        InputColumnName = inputColumnName;
        modelBytes = File.ReadAllBytes(modelPath); // saved with the model even if the file is gone by then
    }

    /// <summary>The encoder that runs the rows; safe to use from other threads too.</summary>
    public ImageEncoder Encoder { get; }

    public ImageModelOptions Options { get; }

    public string InputColumnName { get; }

    public string OutputColumnName { get; }

    /// <summary>Width of the embedding column.</summary>
    public int Dimension => Encoder.Dimension;

    internal ReadOnlySpan<byte> ModelBytes => modelBytes;

    /// <summary>The type of the image column the transformer was fitted on (the saved form is built for it).</summary>
    internal DataViewType InputType { get; init; } = TextDataViewType.Instance;

    public bool IsRowToRowMapper => true;

    public DataViewSchema GetOutputSchema(DataViewSchema inputSchema)
    {
        ArgumentNullException.ThrowIfNull(inputSchema);
        CheckInput(inputSchema, InputColumnName);
        var builder = new DataViewSchema.Builder();
        builder.AddColumns(inputSchema);
        builder.AddColumn(OutputColumnName, new VectorDataViewType(NumberDataViewType.Single, Dimension));
        return builder.ToSchema();
    }

    public IDataView Transform(IDataView input)
    {
        ArgumentNullException.ThrowIfNull(input);
        return new EncodedDataView(this, input, GetOutputSchema(input.Schema));
    }

    public IRowToRowMapper GetRowToRowMapper(DataViewSchema inputSchema)
    {
        ArgumentNullException.ThrowIfNull(inputSchema);
        return new EncodingRowMapper(this, inputSchema, GetOutputSchema(inputSchema));
    }

    /// <summary>Writes the equivalent chain of ML.NET's own transforms (see the class remarks).</summary>
    void ICanSaveModel.Save(ModelSaveContext ctx)
    {
        using var portable = PortableImageEncoder.Build(this);
        ((ICanSaveModel)portable.Chain).Save(ctx);
    }

    /// <summary>The input column must hold image paths (text), encoded images (a byte vector) or ML.NET images (<see cref="MLImage"/>).</summary>
    internal static void CheckInput(DataViewSchema schema, string name)
    {
        var column = schema.GetColumnOrNull(name)
            ?? throw new ArgumentOutOfRangeException(nameof(schema), $"the input has no column '{name}' of image paths or images " +
                                                                     $"(columns: {string.Join(", ", schema.Where(c => !c.IsHidden).Select(c => c.Name))})");
        if (!IsPathColumn(column) && !IsBytesColumn(column) && !IsImageColumn(column))
            throw new ArgumentOutOfRangeException(nameof(schema), $"column '{name}' should hold image paths (text), encoded images (a byte vector) " +
                                                                  $"or MLImage (LoadImages), found {column.Type}");
    }

    internal static bool IsImageColumn(DataViewSchema.Column column) => column.Type is ImageDataViewType;

    internal static bool IsPathColumn(DataViewSchema.Column column) => column.Type is TextDataViewType;

    internal static bool IsBytesColumn(DataViewSchema.Column column) => column.Type is VectorDataViewType { ItemType: var item } && item == NumberDataViewType.Byte;

    /// <summary>A function that reads the current row's image and writes its preprocessed input, for one cursor or row.</summary>
    internal ImageReader ReaderFor(DataViewRow row)
    {
        var column = row.Schema[InputColumnName];
        var preprocessing = Encoder.Preprocessing;
        if (IsPathColumn(column))
        {
            var getter = row.GetGetter<ReadOnlyMemory<char>>(column);
            return () =>
            {
                ReadOnlyMemory<char> text = default;
                getter(ref text);
                string path = text.ToString();
                if (path.Length == 0)
                    throw new DataFormatException($"row {row.Position} of column '{InputColumnName}'", null, "expected an image path, found an empty value");
                return destination => preprocessing.Load(path, destination);
            };
        }
        if (IsImageColumn(column))
        {
            var imageGetter = row.GetGetter<MLImage>(column);
            return () =>
            {
                MLImage image = null!;
                imageGetter(ref image);
                string source = $"row {row.Position} of column '{InputColumnName}'" + (image?.Tag is { Length: > 0 } tag ? $" ({tag})" : "");
                if (image is null)
                    throw new DataFormatException(source, null, "expected an image, found none (a missing or unreadable file in LoadImages?)");
                // Copied here, on the cursor's thread: the upstream transform may dispose the image when the cursor moves.
                (byte[] bgr, int width, int height) = (image.GetBGRPixels, image.Width, image.Height);
                return destination => preprocessing.Load(bgr, width, height, PixelLayout.Bgr24, source, destination);
            };
        }
        var bytesGetter = row.GetGetter<VBuffer<byte>>(column);
        return () =>
        {
            VBuffer<byte> buffer = default;
            bytesGetter(ref buffer);
            byte[] encoded = buffer.DenseValues().ToArray();
            string source = $"row {row.Position} of column '{InputColumnName}'";
            return destination => preprocessing.Load(encoded, source, destination);
        };
    }

    public void Dispose() => Encoder.Dispose();
}

/// <summary>Reads the current row's image value (on the cursor's thread) and returns how to preprocess it (on any thread).</summary>
internal delegate Action<Span<float>> ImageReader();
