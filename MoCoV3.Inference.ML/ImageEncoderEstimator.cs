using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms.Image;

namespace MoCoV3.Inference.ML;

/// <summary>
/// The estimator of <see cref="ImageEncoderCatalog.ApplyImageEncoder"/>. Nothing is learned: <see cref="Fit"/> loads the
/// encoder and checks the input column.
/// </summary>
public sealed class ImageEncoderEstimator : IEstimator<ImageEncoderTransformer>
{
    private readonly string modelPath;
    private readonly string outputColumnName;
    private readonly string inputColumnName;
    private readonly ImageModelOptions? options;

    internal ImageEncoderEstimator(string modelPath, string outputColumnName, string inputColumnName, ImageModelOptions? options)
    {
        ArgumentException.ThrowIfNullOrEmpty(modelPath);
        ArgumentException.ThrowIfNullOrEmpty(outputColumnName);
        ArgumentException.ThrowIfNullOrEmpty(inputColumnName);
        this.modelPath = modelPath;
        this.outputColumnName = outputColumnName;
        this.inputColumnName = inputColumnName;
        this.options = options;
    }

    /// <summary>Loads the encoder; <paramref name="input"/> must have the input column (text paths, a byte vector or MLImage).</summary>
    public ImageEncoderTransformer Fit(IDataView input)
    {
        ArgumentNullException.ThrowIfNull(input);
        ImageEncoderTransformer.CheckInput(input.Schema, inputColumnName);
        return new ImageEncoderTransformer(ImageEncoder.Load(modelPath, options), modelPath, options, outputColumnName, inputColumnName)
        {
            InputType = input.Schema[inputColumnName].Type,
        };
    }

    /// <summary>
    /// A <see cref="SchemaShape.Column"/> for a known-size <see cref="float"/> vector. Its constructor is internal to ML.NET
    /// (components outside ML.NET cannot make one), so it is called by reflection; a future ML.NET without it gets a clear error.
    /// </summary>
    private static SchemaShape.Column FloatVectorColumn(string name)
    {
        var ctor = typeof(SchemaShape.Column).GetConstructors(System.Reflection.BindingFlags.Instance | System.Reflection.BindingFlags.NonPublic)
            .FirstOrDefault(c => c.GetParameters().Length == 5 && c.GetParameters()[0].ParameterType == typeof(string))
            ?? throw new NotSupportedException("this ML.NET has no SchemaShape.Column(name, kind, type, isKey, annotations) constructor; " +
                                               "GetOutputSchema cannot describe the embedding column (Fit and Transform are unaffected)");
        return (SchemaShape.Column)ctor.Invoke([name, SchemaShape.Column.VectorKind.Vector, NumberDataViewType.Single, false, null]);
    }

    /// <summary>The input columns plus the embedding column (<see cref="float"/> vector of the encoder's dimension).</summary>
    public SchemaShape GetOutputSchema(SchemaShape inputSchema)
    {
        ArgumentNullException.ThrowIfNull(inputSchema);
        var column = inputSchema.FirstOrDefault(c => c.Name == inputColumnName);
        if (column.Name is null)
            throw new ArgumentOutOfRangeException(nameof(inputSchema), $"the input has no column '{inputColumnName}' of image paths or encoded images");
        bool text = column.Kind == SchemaShape.Column.VectorKind.Scalar && column.ItemType is TextDataViewType;
        bool bytes = column.Kind != SchemaShape.Column.VectorKind.Scalar && column.ItemType == NumberDataViewType.Byte;
        bool image = column.Kind == SchemaShape.Column.VectorKind.Scalar && column.ItemType is ImageDataViewType;
        if (!text && !bytes && !image)
            throw new ArgumentOutOfRangeException(nameof(inputSchema), $"column '{inputColumnName}' should hold image paths (text), encoded images " +
                                                                       $"(a byte vector) or MLImage (LoadImages), found {column.ItemType}");
        int dimension;
        using (var encoder = ImageEncoder.Load(modelPath, options))
            dimension = encoder.Dimension;
        _ = dimension; // a SchemaShape column records only that the vector has a known size
        return new SchemaShape(inputSchema.Where(c => c.Name != outputColumnName).Append(FloatVectorColumn(outputColumnName)));
    }
}
