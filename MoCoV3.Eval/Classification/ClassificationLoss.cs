using static TorchSharp.torch;

namespace MoCoV3.Eval.Classification;

/// <summary>
/// The loss of supervised training on soft targets (timm's <c>SoftTargetCrossEntropy</c>):
/// <c>mean over the batch of −Σ_c t_c · log softmax(z)_c</c>, with label-smoothed one-hot targets
/// <c>t = (1 − ε)·onehot(y) + ε / classes</c>, mixed by mixup/cutmix when used.
/// </summary>
public static class ClassificationLoss
{
    /// <summary>Label-smoothed one-hot targets <c>[N, classes]</c>: ε/classes everywhere, plus 1 − ε at the label.</summary>
    public static Tensor SmoothedOneHot(Tensor labels, int classes, double smoothing)
    {
        if (!(smoothing is >= 0 and < 1)) throw new ArgumentOutOfRangeException(nameof(smoothing), smoothing, "label smoothing must be in [0, 1)");
        double off = smoothing / classes;
        using var scope = NewDisposeScope();
        var onehot = nn.functional.one_hot(labels, classes).to_type(ScalarType.Float32);
        return (onehot * (1 - smoothing) + off).MoveToOuterDisposeScope();
    }

    /// <summary>Cross-entropy of logits <c>[N, classes]</c> against soft targets <c>[N, classes]</c>, averaged over N.</summary>
    public static Tensor SoftTarget(Tensor logits, Tensor targets)
    {
        using var scope = NewDisposeScope();
        var logp = nn.functional.log_softmax(logits, dim: 1);
        return (-(targets.to(logits.device) * logp)).sum(dim: 1).mean().MoveToOuterDisposeScope();
    }

    /// <summary>Label-smoothed cross-entropy of hard labels (the fine-tuning loss without mixing).</summary>
    public static Tensor Smoothed(Tensor logits, Tensor labels, double smoothing)
    {
        using var scope = NewDisposeScope();
        return SoftTarget(logits, SmoothedOneHot(labels, (int)logits.shape[1], smoothing)).MoveToOuterDisposeScope();
    }
}
