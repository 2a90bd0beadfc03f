// PredictHost MODEL.zip IMAGE... : loads the model with a fresh MLContext and prints, per image, one line
//   path <TAB> predicted label <TAB> the scores (comma-separated, round-trip precision)
using System.Globalization;
using Microsoft.ML;

if (args.Length < 2)
{
    Console.Error.WriteLine("usage: PredictHost MODEL.zip IMAGE...");
    return 1;
}
var ml = new MLContext();
var model = ml.Model.LoadVerified(args[0], out _);
using var engine = ml.Model.CreatePredictionEngine<Row, Prediction>(model);
foreach (string image in args.Skip(1))
{
    var p = engine.Predict(new Row { ImagePath = image });
    Console.WriteLine($"{image}\t{p.PredictedLabel}\t{string.Join(",", p.Score.Select(s => s.ToString("R", CultureInfo.InvariantCulture)))}");
}
return 0;

internal sealed class Row
{
    public string ImagePath { get; set; } = "";

    /// <summary>Empty: pipelines that map the label to a key at training time still need the column to exist.</summary>
    public string Label { get; set; } = "";
}

internal sealed class Prediction
{
    public string PredictedLabel { get; set; } = "";
    public float[] Score { get; set; } = [];
}
