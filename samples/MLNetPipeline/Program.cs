// MLNetPipeline: image classification in ML.NET on MoCo v3 embeddings.
//   dotnet run -- encoder.onnx IMAGE_FOLDER [model.zip] [sdca|lbfgs]
// IMAGE_FOLDER has one sub-folder per class (ImageFolder layout). The encoder runs once per image; the trainer is
// cross-validated on the cached embeddings, fitted on all of them, saved with the encoder inside model.zip, and the
// saved model is loaded back and checked against the one in memory.
using System.Diagnostics;
using Microsoft.ML;
using Microsoft.ML.Data;

if (args.Length is < 2 or > 4)
{
    Console.Error.WriteLine("usage: MLNetPipeline ENCODER.onnx IMAGE_FOLDER [MODEL.zip] [sdca|lbfgs]");
    return 1;
}
string encoderPath = args[0], folder = args[1];
string modelPath = args.Length > 2 ? args[2] : "model.zip";
string trainerName = args.Length > 3 ? args[3] : "sdca";

string[] extensions = [".jpg", ".jpeg", ".png", ".webp"];
var rows = Directory.GetDirectories(folder).Order(StringComparer.Ordinal)
    .SelectMany(dir => Directory.EnumerateFiles(dir, "*", SearchOption.AllDirectories)
        .Where(f => extensions.Contains(Path.GetExtension(f).ToLowerInvariant()))
        .Order(StringComparer.Ordinal)
        .Select(f => new ImageRow { ImagePath = f, Label = Path.GetFileName(dir) }))
    .ToList();
if (rows.Select(r => r.Label).Distinct().Count() < 2)
{
    Console.Error.WriteLine($"error: {folder}: expected class sub-folders with images (at least 2 classes)");
    return 2;
}

var ml = new MLContext(seed: 0);
var data = ml.Data.LoadFromEnumerable(rows);

// 1. The encoder as an ML.NET transform: image paths in, a fixed-size float vector out (batched inside).
var encoder = ml.Transforms.ApplyImageEncoder(encoderPath, outputColumnName: "Features", inputColumnName: "ImagePath").Fit(data);
var clock = Stopwatch.StartNew();
var embedded = ml.Data.Cache(encoder.Transform(data)); // embed every image once; the folds below reuse the cache
long count = embedded.GetColumn<float[]>("Features").LongCount(); // reading the column fills the cache
Console.WriteLine($"embedded {count} images ({encoder.Dimension}-d) in {clock.Elapsed.TotalSeconds:F1} s");

// 2. The classifier: any ML.NET multiclass trainer reads the Features column.
IEstimator<ITransformer> trainer = trainerName switch
{
    "lbfgs" => ml.MulticlassClassification.Trainers.LbfgsMaximumEntropy(),
    "sdca" => ml.MulticlassClassification.Trainers.SdcaMaximumEntropy(),
    _ => throw new ArgumentException($"unknown trainer '{trainerName}': use sdca or lbfgs"),
};
var classifier = ml.Transforms.Conversion.MapValueToKey("Label")
    .Append(ml.Transforms.NormalizeMeanVariance("Features"))
    .Append(trainer)
    .Append(ml.Transforms.Conversion.MapKeyToValue("PredictedLabel"));

// 3. Cross-validation of the classifier on the cached embeddings.
var folds = ml.MulticlassClassification.CrossValidate(embedded, classifier, numberOfFolds: 3);
var accuracies = folds.Select(f => f.Metrics.MicroAccuracy).ToArray();
Console.WriteLine($"3-fold cross-validation ({trainerName}): accuracy {accuracies.Average():P2} " +
                  $"(folds {string.Join(", ", accuracies.Select(a => a.ToString("P2")))})");

// 4. The final model: the encoder followed by the classifier fitted on every image; saved with the encoder inside.
var fitted = classifier.Fit(embedded);
var model = new TransformerChain<ITransformer>(encoder, fitted);
ml.Model.Save(model, data.Schema, modelPath);
Console.WriteLine($"saved {modelPath} ({new FileInfo(modelPath).Length / 1e6:F1} MB)");

// 5. Load it back in a fresh context, as another application would, and compare a few predictions.
var reloaded = new MLContext().Model.LoadVerified(modelPath, out _); // checks every zip entry's CRC-32 first
using var before = ml.Model.CreatePredictionEngine<ImageRow, ImagePrediction>(model);
using var after = new MLContext().Model.CreatePredictionEngine<ImageRow, ImagePrediction>(reloaded);
int same = 0, shown = Math.Min(5, rows.Count);
foreach (var row in rows.Take(shown))
{
    var p = before.Predict(row);
    var q = after.Predict(row);
    if (p.PredictedLabel == q.PredictedLabel) same++;
    Console.WriteLine($"{row.ImagePath}\ttrue {row.Label}\tpredicted {q.PredictedLabel} ({q.Score.Max():P1})");
}
Console.WriteLine($"reloaded model agrees on {same} of {shown}");
return same == shown ? 0 : 3;

/// <summary>An image and its class (the sub-folder name).</summary>
internal sealed class ImageRow
{
    public string ImagePath { get; set; } = "";
    public string Label { get; set; } = "";
}

internal sealed class ImagePrediction
{
    public string PredictedLabel { get; set; } = "";
    public float[] Score { get; set; } = [];
}
