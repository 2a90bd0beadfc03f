using static TorchSharp.torch;

namespace MoCoV3.Distributed;

/// <summary>
/// MoCo v3's contrastive loss when the batch is split over ranks (official <c>contrastive_loss</c> with
/// <c>concat_all_gather</c>): each rank's N queries against the keys of all S·N images, gathered without gradient; the
/// positive of local row i is global column N·rank + i. Scaled by 2τ and computed in fp32, as <see cref="Method.MoCo.ContrastiveLoss"/> (fp64 inputs stay fp64).
/// <code>
///   k_all  = all_gather(k̂)                      (S·N × d, no gradient)
///   logits = q̂ · k_allᵀ / τ                      (N × S·N)
///   loss   = CrossEntropy(logits, arange(N) + N·rank) · 2τ
/// </code>
/// Every rank must pass the same N. The mean over ranks of this loss is the one-process loss on the whole batch; with gradients averaged over ranks,
/// so are the gradients. At one rank it is <see cref="Method.MoCo.ContrastiveLoss"/>.
/// </summary>
public static class DistributedContrastiveLoss
{
    public static Tensor Compute(Tensor q, Tensor k, double temperature, ICommunicator communicator)
    {
        q = nn.functional.normalize(AtLeastFloat32(q), dim: 1);
        Tensor keys;
        using (no_grad())
        {
            var local = nn.functional.normalize(AtLeastFloat32(k), dim: 1).contiguous();
            keys = communicator.AllGather(local);
        }
        var logits = matmul(q, keys.t()) / temperature;
        long n = q.shape[0];
        var labels = arange(n, dtype: ScalarType.Int64, device: q.device) + n * communicator.Rank;
        return nn.functional.cross_entropy(logits, labels) * (2 * temperature);
    }

    // fp32 for bf16/fp16 activations, as the one-process loss; fp64 (tests) stays fp64.
    private static Tensor AtLeastFloat32(Tensor t) => t.dtype == ScalarType.Float64 ? t : t.to_type(ScalarType.Float32);
}
