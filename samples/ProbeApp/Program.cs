// ProbeApp: classify image files with a linear probe saved by `mocov3 probe` (probe.zip):
//   dotnet run -- probe.zip shoe.png shirt.jpg ...
// prints one line per file: path <TAB> predicted class <TAB> its probability.
using System.Globalization;
using Microsoft.ML;

if (args.Length < 2)
{
    Console.Error.WriteLine("usage: ProbeApp PROBE.zip IMAGE [IMAGE ...]");
    return 1;
}

try
{
    var ml = new MLContext();
    // The saved model starts with the encoder, so it takes image paths: column "ImagePath".
    ITransformer model = ml.Model.LoadVerified(args[0], out _); // refuses a damaged probe.zip, naming the entry
    using var engine = ml.Model.CreatePredictionEngine<ImageInput, ImagePrediction>(model);
    foreach (string file in args.Skip(1))
    {
        var prediction = engine.Predict(new ImageInput { ImagePath = file });
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{file}\t{prediction.PredictedLabel}\t{prediction.Score.Max():F6}"));
    }
    return 0;
}
catch (Exception e) when (e is IOException or InvalidDataException or InvalidOperationException or FormatException or MoCoV3.DataFormatException)
{
    Console.Error.WriteLine($"error: {e.Message}");
    return 2;
}

/// <summary>One image for the probe.</summary>
internal sealed class ImageInput
{
    public string ImagePath { get; set; } = "";
}

/// <summary>What the probe says about it.</summary>
internal sealed class ImagePrediction
{
    /// <summary>The class name.</summary>
    public string PredictedLabel { get; set; } = "";

    /// <summary>The probability of each class, in class order.</summary>
    public float[] Score { get; set; } = [];
}
