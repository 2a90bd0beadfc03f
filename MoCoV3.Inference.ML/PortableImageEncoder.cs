using Google.Protobuf;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms.Image;
using Microsoft.ML.Transforms;
using Microsoft.ML.Transforms.Onnx;
using Onnx;

namespace MoCoV3.Inference.ML;

/// <summary>
/// The saved form of an <see cref="ImageEncoderTransformer"/>, made only of transforms ML.NET can save and load itself:
/// <list type="number">
/// <item>copy the image column to <see cref="ImageColumn"/>;</item>
/// <item><c>Expression</c>: <see cref="PreprocessingColumn"/> = the preprocessing settings as text (a constant);</item>
/// <item><c>CustomMapping</c> (contract <see cref="DecodeContract"/> or <see cref="DecodeBytesContract"/>): the toolkit's
/// decoder, <see cref="ImagePreprocessing"/> → <see cref="PixelsColumn"/>;</item>
/// <item><c>OnnxTransformer</c> with the encoder (input and output renamed to <see cref="PixelsColumn"/> and
/// <see cref="FeaturesColumn"/>, one image per run and the embedding flattened to <c>[D]</c>, so the column is a
/// <c>Vector&lt;Single, D&gt;</c> like the transformer's);</item>
/// <item>copy <see cref="FeaturesColumn"/> to the output column and drop the four working columns.</item>
/// </list>
/// </summary>
internal sealed class PortableImageEncoder : IDisposable
{
    public const string DecodeContract = "MoCoV3.Inference.DecodeImagePath";
    public const string DecodeBytesContract = "MoCoV3.Inference.DecodeImageBytes";
    public const string DecodeMLImageContract = "MoCoV3.Inference.DecodeMLImage";
    public const string ImageAnchorContract = "MoCoV3.Inference.ImageAnchor";
    public const string BytesAnchorContract = "MoCoV3.Inference.BytesAnchor";
    public const string ImageColumn = "mocov3_encoder_image";
    public const string PreprocessingAnchorColumn = "mocov3_encoder_anchor";
    public const string PreprocessingColumn = "mocov3_encoder_preprocessing";
    public const string PixelsColumn = "mocov3_encoder_pixels";
    public const string FeaturesColumn = "mocov3_encoder_features";

    private readonly string folder;

    private PortableImageEncoder(string folder, ITransformer chain)
    {
        this.folder = folder;
        Chain = chain;
    }

    public ITransformer Chain { get; }

    public static PortableImageEncoder Build(ImageEncoderTransformer transformer)
    {
        var ml = new MLContext();
        string folder = Directory.CreateTempSubdirectory("mocov3-portable-encoder-").FullName;
        try
        {
            string model = Path.Combine(folder, "encoder.onnx");
            File.WriteAllBytes(model, SingleImageGraph(transformer).ToByteArray());
            var encoder = transformer.Encoder;
            IDataView sample = SampleView(ml, transformer);
            var column = sample.Schema[transformer.InputColumnName];
            string preprocessing = encoder.Preprocessing.ToString().Replace("\"", "'", StringComparison.Ordinal);
            // Expression reads neither images nor byte vectors, so for those the constant hangs off a number column made for it.
            bool anchored = !ImageEncoderTransformer.IsPathColumn(column);
            IEstimator<ITransformer> pipeline = ml.Transforms.CopyColumns(ImageColumn, transformer.InputColumnName);
            if (ImageEncoderTransformer.IsImageColumn(column))
                pipeline = pipeline.Append(ml.Transforms.CustomMapping(new ImageAnchor().GetMapping(), ImageAnchorContract));
            else if (anchored)
                pipeline = pipeline.Append(ml.Transforms.CustomMapping(new BytesAnchor().GetMapping(), BytesAnchorContract));
            pipeline = pipeline.Append(ml.Transforms.Expression(PreprocessingColumn, $"x => \"{preprocessing}\"", anchored ? PreprocessingAnchorColumn : ImageColumn));
            pipeline = ImageEncoderTransformer.IsBytesColumn(column)
                ? pipeline.Append(ml.Transforms.CustomMapping(new DecodeImageBytes().GetMapping(), DecodeBytesContract))
                : ImageEncoderTransformer.IsImageColumn(column)
                    ? pipeline.Append(ml.Transforms.CustomMapping(new DecodeMLImage().GetMapping(), DecodeMLImageContract))
                    : pipeline.Append(ml.Transforms.CustomMapping(new DecodeImagePath().GetMapping(), DecodeContract));
            pipeline = pipeline
                .Append(ml.Transforms.ApplyOnnxModel(new OnnxOptions
                {
                    ModelFile = model,
                    InputColumns = [PixelsColumn],
                    OutputColumns = [FeaturesColumn],
                    IntraOpNumThreads = transformer.Options.Threads,
                    InterOpNumThreads = 1,
                    FallbackToCpu = true,
                }))
                .Append(ml.Transforms.CopyColumns(transformer.OutputColumnName, FeaturesColumn))
                .Append(ml.Transforms.DropColumns(anchored
                    ? [ImageColumn, PreprocessingAnchorColumn, PreprocessingColumn, PixelsColumn, FeaturesColumn]
                    : [ImageColumn, PreprocessingColumn, PixelsColumn, FeaturesColumn]));
            var chain = pipeline.Fit(sample);
            return new PortableImageEncoder(folder, chain);
        }
        catch
        {
            Directory.Delete(folder, recursive: true);
            throw;
        }
    }

    /// <summary>A one-row view with only the image column, of the input's type, to fit the chain on (nothing is learned).</summary>
    private static IDataView SampleView(MLContext ml, ImageEncoderTransformer transformer)
    {
        if (transformer.InputType is ImageDataViewType imageType)
        {
            AnySizeImageType.Register();
            // CustomMapping declares its input types statically: the saved decoder reads LoadImages' images of any size.
            if (imageType.Height != 0 || imageType.Width != 0)
                throw new NotSupportedException($"column '{transformer.InputColumnName}' holds images of a fixed {imageType.Width}x{imageType.Height}: " +
                                                "a saved ApplyImageEncoder reads MLImage columns as LoadImages makes them (of any size); apply it before " +
                                                "ResizeImages (the encoder resizes and crops itself)");
            var images = SchemaDefinition.Create(typeof(ImageSampleRow));
            images[nameof(ImageSampleRow.Image)].ColumnName = transformer.InputColumnName;
            return ml.Data.LoadFromEnumerable([new ImageSampleRow()], images);
        }
        if (transformer.InputType is VectorDataViewType)
        {
            var bytes = SchemaDefinition.Create(typeof(BytesSampleRow));
            bytes[nameof(BytesSampleRow.Bytes)].ColumnName = transformer.InputColumnName;
            return ml.Data.LoadFromEnumerable([new BytesSampleRow()], bytes);
        }
        var definition = SchemaDefinition.Create(typeof(SampleRow));
        definition[nameof(SampleRow.Path)].ColumnName = transformer.InputColumnName;
        return ml.Data.LoadFromEnumerable([new SampleRow()], definition);
    }

    /// <summary>
    /// The encoder's graph for one image: input <see cref="PixelsColumn"/> of shape <c>[1, C·H·W]</c> reshaped to the encoder's <c>[1, C, H, W]</c>, one
    /// output <see cref="FeaturesColumn"/> of shape <c>[D]</c> (a Reshape of the embedding).
    /// </summary>
    private static ModelProto SingleImageGraph(ImageEncoderTransformer transformer)
    {
        var model = ModelProto.Parser.ParseFrom(transformer.ModelBytes);
        OnnxDigest.Remove(model); // a graph derived from the encoder's, no longer the one its digest describes
        var graph = model.Graph;
        string inputName = graph.Input.Count == 1 ? graph.Input[0].Name
            : graph.Input.Single(i => i.Name == OnnxMetadata.InputName).Name;
        var pre = transformer.Encoder.Preprocessing;
        string outputName = transformer.Options.OutputName
            ?? (graph.Output.Any(o => o.Name == OnnxMetadata.EmbeddingName) ? OnnxMetadata.EmbeddingName : graph.Output.Single().Name);

        // OnnxTransformer feeds a variable-length vector column only into an input with one unknown dimension after the
        // first, so the pixels come in as [1, L] and a Reshape makes them the encoder's [1, C, H, W].
        var input = graph.Input.Single(i => i.Name == inputName);
        input.Name = PixelsColumn;
        var dims = input.Type.TensorType.Shape.Dim;
        dims.Clear();
        dims.Add(new TensorShapeProto.Types.Dimension { DimValue = 1 });
        dims.Add(new TensorShapeProto.Types.Dimension { DimParam = "L" });
        const string imageShape = "mocov3_encoder_image_shape";
        graph.Initializer.Add(new TensorProto { Name = imageShape, DataType = (int)TensorProto.Types.DataType.Int64, Dims = { 4 }, Int64Data = { 1, pre.Channels, pre.Size, pre.Size } });
        graph.Node.Insert(0, new NodeProto { OpType = "Reshape", Name = "mocov3_encoder_unflatten", Input = { PixelsColumn, imageShape }, Output = { inputName } });

        const string shapeName = "mocov3_encoder_features_shape";
        graph.Initializer.Add(new TensorProto { Name = shapeName, DataType = (int)TensorProto.Types.DataType.Int64, Dims = { 1 }, Int64Data = { transformer.Dimension } });
        graph.Node.Add(new NodeProto { OpType = "Reshape", Name = "mocov3_encoder_flatten", Input = { outputName, shapeName }, Output = { FeaturesColumn } });
        graph.Output.Clear();
        graph.Output.Add(new ValueInfoProto
        {
            Name = FeaturesColumn,
            Type = new TypeProto
            {
                TensorType = new TypeProto.Types.Tensor
                {
                    ElemType = (int)TensorProto.Types.DataType.Float,
                    Shape = new TensorShapeProto { Dim = { new TensorShapeProto.Types.Dimension { DimValue = transformer.Dimension } } },
                },
            },
        });
        return model;
    }

    public void Dispose()
    {
        (Chain as IDisposable)?.Dispose();
        try
        {
            Directory.Delete(folder, recursive: true);
        }
        catch (IOException)
        {
            // a leftover temporary folder is harmless
        }
    }

    private sealed class SampleRow
    {
        public string Path { get; set; } = "";
    }

    private sealed class BytesSampleRow
    {
        public byte[] Bytes { get; set; } = [];
    }

    private sealed class ImageSampleRow
    {
        public MLImage? Image { get; set; }
    }
}

/// <summary>The saved form's stand-in column for <c>Expression</c> when the images are <see cref="MLImage"/> (which it cannot read).</summary>
[CustomMappingFactoryAttribute(PortableImageEncoder.ImageAnchorContract)]
public sealed class ImageAnchor : CustomMappingFactory<ImageAnchor.Input, ImageAnchor.Output>
{
    static ImageAnchor() => AnySizeImageType.Register();

    public override Action<Input, Output> GetMapping() => (input, output) => output.Anchor = 0;

    public sealed class Input
    {
        [ColumnName(PortableImageEncoder.ImageColumn)]
        public MLImage? Image { get; set; }
    }

    public sealed class Output
    {
        [ColumnName(PortableImageEncoder.PreprocessingAnchorColumn)]
        public float Anchor { get; set; }
    }
}

/// <summary>The saved form's stand-in column for <c>Expression</c> when the images are encoded bytes (which it cannot read).</summary>
[CustomMappingFactoryAttribute(PortableImageEncoder.BytesAnchorContract)]
public sealed class BytesAnchor : CustomMappingFactory<BytesAnchor.Input, ImageAnchor.Output>
{
    public override Action<Input, ImageAnchor.Output> GetMapping() => (input, output) => output.Anchor = 0;

    public sealed class Input
    {
        [ColumnName(PortableImageEncoder.ImageColumn)]
        public byte[] Image { get; set; } = [];
    }
}

/// <summary>The decoder of the saved form for ML.NET images (<see cref="MLImage"/>, as <c>LoadImages</c> makes them).</summary>
[CustomMappingFactoryAttribute(PortableImageEncoder.DecodeMLImageContract)]
public sealed class DecodeMLImage : CustomMappingFactory<DecodeMLImage.Input, DecodeImagePath.Output>
{
    static DecodeMLImage() => AnySizeImageType.Register();

    public override Action<Input, DecodeImagePath.Output> GetMapping() => (input, output) =>
    {
        var preprocessing = PreprocessingCache.Get(input.Preprocessing);
        var image = input.Image ?? throw new DataFormatException("(MLImage)", null, "expected an image, found none (a missing or unreadable file in LoadImages?)");
        output.Pixels = new float[preprocessing.ValuesPerImage];
        preprocessing.Load(image.GetBGRPixels, image.Width, image.Height, PixelLayout.Bgr24, image.Tag is { Length: > 0 } tag ? tag : "(MLImage)", output.Pixels);
    };

    public sealed class Input
    {
        [ColumnName(PortableImageEncoder.ImageColumn)]
        public MLImage? Image { get; set; }

        [ColumnName(PortableImageEncoder.PreprocessingColumn)]
        public string Preprocessing { get; set; } = "";
    }
}

/// <summary>The decoder of the saved form for image paths: (path, preprocessing text) → the model's input pixels.</summary>
[CustomMappingFactoryAttribute(PortableImageEncoder.DecodeContract)]
public sealed class DecodeImagePath : CustomMappingFactory<DecodeImagePath.Input, DecodeImagePath.Output>
{
    public override Action<Input, Output> GetMapping() => (input, output) =>
    {
        var preprocessing = PreprocessingCache.Get(input.Preprocessing);
        output.Pixels = new float[preprocessing.ValuesPerImage];
        preprocessing.Load(input.Image, output.Pixels);
    };

    public sealed class Input
    {
        [ColumnName(PortableImageEncoder.ImageColumn)]
        public string Image { get; set; } = "";

        [ColumnName(PortableImageEncoder.PreprocessingColumn)]
        public string Preprocessing { get; set; } = "";
    }

    public sealed class Output
    {
        [ColumnName(PortableImageEncoder.PixelsColumn)]
        public float[] Pixels { get; set; } = [];
    }
}

/// <summary>The decoder of the saved form for encoded images held in a byte vector column.</summary>
[CustomMappingFactoryAttribute(PortableImageEncoder.DecodeBytesContract)]
public sealed class DecodeImageBytes : CustomMappingFactory<DecodeImageBytes.Input, DecodeImagePath.Output>
{
    public override Action<Input, DecodeImagePath.Output> GetMapping() => (input, output) =>
    {
        var preprocessing = PreprocessingCache.Get(input.Preprocessing);
        output.Pixels = new float[preprocessing.ValuesPerImage];
        preprocessing.Load(input.Image, "(encoded image)", output.Pixels);
    };

    public sealed class Input
    {
        [ColumnName(PortableImageEncoder.ImageColumn)]
        public byte[] Image { get; set; } = [];

        [ColumnName(PortableImageEncoder.PreprocessingColumn)]
        public string Preprocessing { get; set; } = "";
    }
}

/// <summary>Parsed preprocessing settings by their text (the saved form passes the same constant on every row).</summary>
internal static class PreprocessingCache
{
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, ImagePreprocessing> Parsed = new(StringComparer.Ordinal);

    public static ImagePreprocessing Get(string text) =>
        Parsed.GetOrAdd(text, t => ImagePreprocessing.Parse(t.Replace("'", "\"", StringComparison.Ordinal)));
}

/// <summary>
/// Registers a plain <see cref="MLImage"/> member as ML.NET's image type of any size (what <c>LoadImages</c> makes), so that
/// <c>CustomMapping</c> can declare it: ML.NET 5's <c>[ImageType]</c> without a size throws instead.
/// </summary>
internal static class AnySizeImageType
{
    private static readonly Lazy<bool> Registered = new(() =>
    {
        // Registering the same pair again is allowed; another pairing made by the app first is kept (and reported by
        // CustomMapping when the types disagree).
        try
        {
            DataViewTypeManager.Register(new ImageDataViewType(), typeof(MLImage));
        }
        catch (Exception e) when (e is InvalidOperationException or ArgumentException)
        {
            return false;
        }
        return true;
    });

    public static void Register() => _ = Registered.Value;
}
