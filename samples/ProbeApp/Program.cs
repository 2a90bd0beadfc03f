// Classifies image files with a linear probe saved by `mocov3 probe` (probe.zip), in a process of its own:
//   dotnet ProbeApp.dll probe.zip shoe.png shirt.jpg ...
// prints one line per file: path <TAB> predicted class <TAB> its probability.
using System.Globalization;
using Microsoft.ML;
using Microsoft.ML.Data;
using ProbeApp;

if (args.Length < 2)
{
    Console.Error.WriteLine("usage: ProbeApp <probe.zip> <image> [<image> ...]");
    return 1;
}

try
{
    var ml = new MLContext();
    // The saved model starts with the ONNX encoder, so it takes raw pixels: column "input", C*H*W floats in [0, 1].
    ITransformer model = ml.Model.Load(args[0], out DataViewSchema inputSchema);
    if (inputSchema.GetColumnOrNull(ProbeInput.Column)?.Type is not VectorDataViewType { Size: > 0 } pixelsType)
        throw new InvalidDataException($"{args[0]}: the model has no fixed-size float vector input '{ProbeInput.Column}'");
    var (channels, size) = ImageShape(pixelsType.Size, args[0]);

    var inputDefinition = SchemaDefinition.Create(typeof(ProbeInput));
    inputDefinition[ProbeInput.Column].ColumnType = pixelsType;
    using var engine = ml.Model.CreatePredictionEngine<ProbeInput, ProbePrediction>(model, inputSchemaDefinition: inputDefinition);

    foreach (string file in args.Skip(1))
    {
        var prediction = engine.Predict(new ProbeInput { Pixels = ImagePixels.Read(file, size, channels) });
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{file}\t{prediction.PredictedLabel}\t{prediction.Score.Max():F6}"));
    }
    return 0;
}
catch (Exception e) when (e is IOException or InvalidDataException or InvalidOperationException or FormatException)
{
    Console.Error.WriteLine($"error: {e.Message}");
    return 2;
}

// The probe's images are square with 1 or 3 channels, so the vector length alone gives the shape.
static (int Channels, int Size) ImageShape(int length, string model)
{
    foreach (int channels in new[] { 1, 3 })
    {
        int size = (int)Math.Round(Math.Sqrt(length / (double)channels));
        if (length % channels == 0 && size * size * channels == length) return (channels, size);
    }
    throw new InvalidDataException($"{model}: an input of {length} values is not a square image with 1 or 3 channels");
}

/// <summary>One image for the probe.</summary>
internal sealed class ProbeInput
{
    public const string Column = "input";

    [ColumnName(Column)]
    public float[] Pixels { get; set; } = [];
}

/// <summary>What the probe says about it.</summary>
internal sealed class ProbePrediction
{
    /// <summary>The class name.</summary>
    public string PredictedLabel { get; set; } = "";

    /// <summary>The probability of each class, in class order.</summary>
    public float[] Score { get; set; } = [];
}
