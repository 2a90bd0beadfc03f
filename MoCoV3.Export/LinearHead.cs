using static TorchSharp.torch;

namespace MoCoV3.Export;

/// <summary>
/// A linear classifier on the embedding, <c>logits = embedding · Wᵀ + b</c>, in PyTorch's layout:
/// <see cref="Weight"/> is <c>[Classes, InFeatures]</c> row-major, <see cref="Bias"/> is <c>[Classes]</c>.
/// </summary>
public sealed record LinearHead
{
    public LinearHead(float[] weight, float[] bias, int classes, int inFeatures)
    {
        ArgumentNullException.ThrowIfNull(weight);
        ArgumentNullException.ThrowIfNull(bias);
        if (classes <= 0 || inFeatures <= 0)
            throw new ArgumentException($"head shape [{classes}, {inFeatures}] must be positive");
        if (weight.Length != (long)classes * inFeatures)
            throw new ArgumentException($"head weight has {weight.Length} values, expected {classes} x {inFeatures}");
        if (bias.Length != classes)
            throw new ArgumentException($"head bias has {bias.Length} values, expected {classes}");
        Weight = weight;
        Bias = bias;
        Classes = classes;
        InFeatures = inFeatures;
    }

    public float[] Weight { get; }
    public float[] Bias { get; }
    public int Classes { get; }
    public int InFeatures { get; }

    /// <summary>From a weight <c>[classes, D]</c> and a bias <c>[classes]</c> tensor (e.g. an <c>nn.Linear</c>'s); copied to the CPU as float32.</summary>
    public static LinearHead FromTensors(Tensor weight, Tensor bias)
    {
        ArgumentNullException.ThrowIfNull(weight);
        ArgumentNullException.ThrowIfNull(bias);
        if (weight.dim() != 2 || bias.dim() != 1 || bias.shape[0] != weight.shape[0])
            throw new ArgumentException($"head weight [{string.Join(",", weight.shape)}] and bias [{string.Join(",", bias.shape)}] " +
                                        "must be [classes, D] and [classes]");
        return new LinearHead(TensorData.ToFloatArray(weight), TensorData.ToFloatArray(bias), (int)weight.shape[0], (int)weight.shape[1]);
    }
}
