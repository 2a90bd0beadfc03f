using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Trainers;

namespace MoCoV3.Eval.Probe;

/// <summary>
/// The linear classifier of the probe, fitted on cached features: the label text mapped to keys in class order,
/// <see cref="ProbeColumns.Features"/> = the feature column standardised (mean 0, variance 1, statistics of the rows
/// fitted on), then L-BFGS multiclass logistic regression (maximum entropy) with an L2 penalty and no L1.
/// </summary>
internal static class ProbeTrainer
{
    /// <summary>Fits the classifier on <paramref name="rows"/> of <paramref name="train"/> (all rows when null).</summary>
    /// <returns>The fitted chain: label-to-key, standardisation, the prediction transformer.</returns>
    public static TransformerChain<MulticlassPredictionTransformer<MaximumEntropyModelParameters>> Fit(MLContext ml, FeatureSet train, IReadOnlyList<int>? rows, float l2,
                                                     int maxIterations, int threads)
    {
        var trainer = ml.MulticlassClassification.Trainers.LbfgsMaximumEntropy(new LbfgsMaximumEntropyMulticlassTrainer.Options
        {
            LabelColumnName = ProbeColumns.Label,
            FeatureColumnName = ProbeColumns.Features,
            L2Regularization = l2,
            L1Regularization = 0,
            MaximumNumberOfIterations = maxIterations,
            NumberOfThreads = threads,
        });
        // L-BFGS passes over the data once per iteration: keep the standardised features in memory after the first pass
        // rather than making the rows and standardising them again every time.
        var pipeline = LabelToKey(ml, train.ClassNames)
            .Append(ml.Transforms.NormalizeMeanVariance(ProbeColumns.Features, train.Column))
            .AppendCacheCheckpoint(ml)
            .Append(trainer);
        return pipeline.Fit(train.ToDataView(ml, rows));
    }

    /// <summary>Scores <paramref name="rows"/> of <paramref name="data"/> (all when null) with a chain from <see cref="Fit"/>.</summary>
    public static MulticlassClassificationMetrics Evaluate(MLContext ml, ITransformer fitted, FeatureSet data, IReadOnlyList<int>? rows = null)
    {
        var scored = fitted.Transform(data.ToDataView(ml, rows));
        return ml.MulticlassClassification.Evaluate(scored, ProbeColumns.Label, ProbeColumns.Score, ProbeColumns.PredictedLabel,
                                                    topKPredictionCount: TopK(data.ClassNames.Count));
    }

    /// <summary>The K of the reported top-K accuracy: 5, or the number of classes when there are fewer.</summary>
    public static int TopK(int classes) => Math.Min(5, classes);

    /// <summary>
    /// The model an application uses: optionally the encoder, then the fitted chain without its label-to-key step (an
    /// application has no label), then the predicted key mapped back to the class name.
    /// </summary>
    public static TransformerChain<ITransformer> ForPrediction(MLContext ml, ITransformer? encoder, TransformerChain<MulticlassPredictionTransformer<MaximumEntropyModelParameters>> fitted,
                                                                 FeatureSet sample)
    {
        var stages = new List<ITransformer>();
        if (encoder is not null) stages.Add(encoder);
        stages.AddRange(fitted.Skip(1));
        var scored = fitted.Transform(sample.ToDataView(ml, [0]));
        stages.Add(ml.Transforms.Conversion.MapKeyToValue(ProbeColumns.PredictedLabel).Fit(scored));
        return new TransformerChain<ITransformer>([.. stages]);
    }

    /// <summary>Label text to key, key k + 1 = class k (the keys follow the class order, not the order of first appearance).</summary>
    private static IEstimator<ITransformer> LabelToKey(MLContext ml, IReadOnlyList<string> classNames) =>
        ml.Transforms.Conversion.MapValueToKey(ProbeColumns.Label,
            keyData: ml.Data.LoadFromEnumerable(classNames.Select(name => new ClassName { Label = name }).ToArray()));

    internal sealed class ClassName
    {
        public string Label { get; set; } = "";
    }
}
