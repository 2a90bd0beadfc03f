using static TorchSharp.torch;

namespace MoCoV3.Eval.Classification;

/// <summary>Counts top-1 and top-k hits over batches of logits (k = 5, or the number of classes when fewer).</summary>
public sealed class TopKAccuracy
{
    private readonly int k;

    public TopKAccuracy(int k = 5)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(k, 1);
        this.k = k;
    }

    public long Count { get; private set; }
    public long Top1Hits { get; private set; }
    public long TopKHits { get; private set; }

    /// <summary>Top-1 accuracy in percent (0 before any sample).</summary>
    public double Top1 => Count == 0 ? 0 : 100.0 * Top1Hits / Count;

    /// <summary>Top-k accuracy in percent.</summary>
    public double TopK => Count == 0 ? 0 : 100.0 * TopKHits / Count;

    /// <summary>Adds a batch: logits <c>[N, classes]</c>, labels int64 <c>[N]</c>.</summary>
    public void Add(Tensor logits, Tensor labels)
    {
        using var scope = NewDisposeScope();
        long kk = Math.Min(k, logits.shape[1]);
        var top = logits.topk((int)kk, dim: 1).indexes;                 // [N, k], best first
        var hits = top.eq(labels.to(top.device).unsqueeze(1));          // [N, k]
        Top1Hits += hits[.., 0].sum().item<long>();
        TopKHits += hits.any(dim: 1).sum().item<long>();
        Count += logits.shape[0];
    }
}
