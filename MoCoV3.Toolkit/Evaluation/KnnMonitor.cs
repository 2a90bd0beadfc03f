using System.Diagnostics;
using MoCoV3.Data;
using MoCoV3.Models;
using static TorchSharp.torch;

namespace MoCoV3.Evaluation;

/// <summary>
/// kNN accuracy of a backbone during training: fixed subsets of the train split (the bank) and of the test split
/// (the queries) are embedded with the backbone in eval mode without gradients, then classified by
/// <see cref="KnnClassifier"/>. The backbone's mode is restored afterwards, and nothing here draws random numbers, so
/// monitoring does not change the training run.
/// </summary>
public sealed class KnnMonitor
{
    /// <summary>Images per forward pass at least (small batches cost far more per image, even without gradients).</summary>
    public const int MinBatch = 256;

    private readonly IImageDataset train, test;
    private readonly KnnSubsets subsets;
    private readonly int batch, k;
    private readonly double temperature;

    /// <param name="train">The train split (the bank's images and labels).</param>
    /// <param name="test">The test split (the queries); the train split again when there is none (queries are held out).</param>
    /// <param name="trainCount">Bank size (at most).</param>
    /// <param name="testCount">Queries (at most).</param>
    /// <param name="batch">Images per forward pass.</param>
    public KnnMonitor(IImageDataset train, IImageDataset test, int trainCount, int testCount, int batch,
        int k = KnnClassifier.DefaultK, double temperature = KnnClassifier.DefaultTemperature)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(batch, 1);
        if (train.Channels != test.Channels || train.Height != test.Height || train.Width != test.Width)
            throw new ArgumentException($"{test.Source}: test images are {test.Channels}x{test.Height}x{test.Width}, " +
                                        $"train images ({train.Source}) {train.Channels}x{train.Height}x{train.Width}");
        this.train = train;
        this.test = test;
        subsets = KnnSubsets.Choose(train, test, trainCount, testCount);
        this.batch = batch;
        this.k = k;
        this.temperature = temperature;
    }

    public KnnSubsets Subsets => subsets;

    /// <summary>What is evaluated, for messages.</summary>
    public string Describe() =>
        $"kNN monitor: {subsets.Train.Length} bank images of {train.Source}, {subsets.Test.Length} queries of " +
        (subsets.HeldOut ? "the same source (held out of the bank; there is no test split)" : test.Source) +
        $", k {k}, T {temperature}";

    /// <summary>
    /// Embeds both subsets with <paramref name="backbone"/> (after <paramref name="preprocess"/>: uint8 pixels on the
    /// device → the backbone's input) and returns the kNN accuracy.
    /// </summary>
    public KnnResult Evaluate(Backbone backbone, Func<Tensor, Tensor> preprocess, Device device)
    {
        ArgumentNullException.ThrowIfNull(backbone);
        ArgumentNullException.ThrowIfNull(preprocess);
        bool wasTraining = backbone.training;
        backbone.eval();
        try
        {
            using var scope = NewDisposeScope();
            using var noGrad = no_grad();
            var (bank, bankLabels) = Embed(train, subsets.Train, backbone, preprocess, device);
            var (queries, queryLabels) = Embed(test, subsets.Test, backbone, preprocess, device);
            using var classifier = new KnnClassifier(bank, bankLabels, train.ClassNames.Count, k, temperature);
            return classifier.Evaluate(queries, queryLabels);
        }
        finally
        {
            backbone.train(wasTraining);
        }
    }

    /// <summary>Features <c>[n, D]</c> (float32, on the device) and labels <c>[n]</c> of the images at <paramref name="indices"/>.</summary>
    private (Tensor Features, Tensor Labels) Embed(IImageDataset data, int[] indices, Backbone backbone, Func<Tensor, Tensor> preprocess,
        Device device)
    {
        long imageBytes = (long)data.Channels * data.Height * data.Width;
        var pixels = new byte[Math.Min(batch, indices.Length) * imageBytes];
        var labels = new long[indices.Length];
        var features = new List<Tensor>();
        for (int start = 0; start < indices.Length; start += batch)
        {
            int n = Math.Min(batch, indices.Length - start);
            var span = pixels.AsSpan(0, (int)(n * imageBytes));
            data.ReadBatch(indices.AsSpan(start, n), span, labels.AsSpan(start, n));
            using var inner = NewDisposeScope();
            var x = tensor(span.ToArray(), [n, data.Channels, data.Height, data.Width]).to(device);
            features.Add(backbone.Embed(preprocess(x)).to_type(ScalarType.Float32).MoveToOuterDisposeScope());
        }
        Debug.Assert(features.Count > 0);
        return (cat(features, 0), tensor(labels, device: device));
    }
}
