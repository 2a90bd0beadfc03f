using MoCoV3.Distributed;
using MoCoV3.Models;
using MoCoV3.Optim;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MoCoV3.Method;

/// <summary>
/// MoCo v3 (Chen, Xie, He, ICCV 2021, §3): a query encoder f_q (backbone + projector) followed by a
/// predictor, a momentum encoder f_k (backbone + projector) that is a moving average of f_q, and a
/// contrastive (InfoNCE) loss between queries of one crop and keys of the other crop of the same images.
/// The keys of the other images in the batch are the negatives; there is no memory queue.
/// <code>
///   q1, q2 = predictor(f_q(x1)), predictor(f_q(x2))
///   f_k ← m·f_k + (1-m)·f_q            (parameters only, before computing the keys)
///   k1, k2 = f_k(x1), f_k(x2)           (no gradient)
///   loss = ctr(q1, k2) + ctr(q2, k1)
///   ctr(q, k) = CrossEntropy(q̂·k̂ᵀ / τ, labels = arange(N)) · 2τ      (q̂, k̂ L2-normalised)
/// </code>
/// Each crop is forwarded on its own, so BatchNorm statistics are per crop batch, as in the paper.
/// </summary>
public sealed class MoCo : nn.Module
{
    private readonly Encoder base_encoder;
    private readonly Encoder momentum_encoder;
    private readonly Sequential predictor;

    /// <param name="preset">Architecture and heads.</param>
    /// <param name="backboneFactory">Builds one backbone; called twice (query and momentum encoders).</param>
    public MoCo(ModelPreset preset, Func<ModelPreset, Backbone> backboneFactory) : base(nameof(MoCo))
    {
        Temperature = preset.Recipe.Temperature;
        base_encoder = Encoder.Create(preset, backboneFactory);
        momentum_encoder = Encoder.Create(preset, backboneFactory);
        predictor = ProjectionMlp.Build(preset.Heads.PredictorLayers, preset.Heads.OutDim, preset.Heads.HiddenDim, preset.Heads.OutDim, preset.Heads.PredictorLastBn);
        RegisterComponents();

        // f_k starts as an exact copy of f_q and never receives gradients.
        using (no_grad())
        {
            foreach (var (q, k) in base_encoder.parameters().Zip(momentum_encoder.parameters()))
            {
                k.copy_(q);
                k.requires_grad = false;
            }
        }
    }

    /// <summary>τ of the contrastive loss (0.2 for ViT, 1.0 for ResNet-50 in the paper).</summary>
    public double Temperature { get; }

    /// <summary>The query encoder f_q: this is the one exported and evaluated.</summary>
    public Encoder BaseEncoder => base_encoder;

    public Encoder MomentumEncoder => momentum_encoder;

    public Sequential Predictor => predictor;

    /// <summary>Parameters the optimiser updates: f_q and the predictor, minus frozen ones (e.g. the patch projection).</summary>
    public IEnumerable<Parameter> TrainableParameters() =>
        base_encoder.parameters().Concat(predictor.parameters()).Where(p => p.requires_grad);

    /// <summary>The ranks of a data-parallel run (see <see cref="DataParallel"/>); null in one process.</summary>
    public ICommunicator? Communicator => communicator;

    private ICommunicator? communicator;
    private ICommunicator? batchNormRanks; // null: per-rank BatchNorm statistics

    /// <summary>
    /// Makes this model one rank of a data-parallel run over <paramref name="ranks"/>: each rank forwards its slice of the
    /// batch, the loss takes the keys of all ranks (<see cref="DistributedContrastiveLoss"/>, the official
    /// <c>concat_all_gather</c>) and, with <paramref name="syncBatchNorm"/>, every BatchNorm (both encoders' projectors and
    /// ResNet backbones, the predictor) normalises over the global batch, as <c>convert_sync_batchnorm</c> makes them.
    /// Without it each rank uses its own batch statistics, which does not train like one process (a control for tests).
    /// </summary>
    public void DataParallel(ICommunicator ranks, bool syncBatchNorm = true)
    {
        communicator = ranks;
        batchNormRanks = syncBatchNorm ? ranks : null;
        base_encoder.Communicator = batchNormRanks;
        momentum_encoder.Communicator = batchNormRanks;
    }

    /// <summary>One MoCo v3 loss for a batch of two crops, updating f_k with momentum <paramref name="m"/> first.</summary>
    public Tensor forward(Tensor x1, Tensor x2, double m)
    {
        if (communicator is not null) return DataParallelForward(x1, x2, m, communicator);
        var q1 = Autocast.Forward(predictor, base_encoder.forward(x1));
        var q2 = Autocast.Forward(predictor, base_encoder.forward(x2));

        Tensor k1, k2;
        using (no_grad())
        {
            UpdateMomentumEncoder(m);
            k1 = momentum_encoder.forward(x1);
            k2 = momentum_encoder.forward(x2);
        }
        return ContrastiveLoss(q1, k2, Temperature) + ContrastiveLoss(q2, k1, Temperature);
    }

    /// <summary>
    /// <see cref="forward"/> on one rank's slice: SyncBatchNorm in the heads, keys gathered from every rank (<see cref="DataParallel"/>). The mean over
    /// ranks of this loss is the one-process loss of the whole batch; with gradients averaged over ranks, so are the gradients.
    /// </summary>
    private Tensor DataParallelForward(Tensor x1, Tensor x2, double m, ICommunicator ranks)
    {
        Tensor Predict(Tensor x) => batchNormRanks is null ? Autocast.Forward(predictor, x) : SyncBatchNorm.ForwardSequential(predictor, x, batchNormRanks);
        var q1 = Predict(base_encoder.forward(x1));
        var q2 = Predict(base_encoder.forward(x2));

        Tensor k1, k2;
        using (no_grad())
        {
            UpdateMomentumEncoder(m);
            k1 = momentum_encoder.forward(x1);
            k2 = momentum_encoder.forward(x2);
        }
        return DistributedContrastiveLoss.Compute(q1, k2, Temperature, ranks) + DistributedContrastiveLoss.Compute(q2, k1, Temperature, ranks);
    }

    /// <summary>
    /// θ_k ← m·θ_k + (1 − m)·θ_q for every parameter, the frozen ones (a ViT's patch projection and position embedding)
    /// included, as the official <c>_update_momentum_encoder</c> does: a momentum encoder loaded with other frozen values
    /// moves toward the query encoder's as there (BatchNorm running statistics are buffers, not averaged).
    /// </summary>
    public void UpdateMomentumEncoder(double m)
    {
        using var _ = no_grad();
        if (momentumValues is not null && queryEncoderValues is not null)
        {
            // Packed (FlattenParameters): the same two operations, once over every parameter.
            momentumValues.mul_(m).add_(queryEncoderValues, alpha: 1 - m);
            return;
        }
        foreach (var (q, k) in base_encoder.parameters().Zip(momentum_encoder.parameters()))
            k.mul_(m).add_(q, alpha: 1 - m);
    }

    private ParameterBuffer? queryBuffer, momentumBuffer, trainableBuffer;
    private Tensor? queryEncoderValues, momentumValues;

    /// <summary>
    /// Packs the parameters into flat buffers (<see cref="ParameterBuffer"/>), so that the momentum update is two kernels
    /// over all of f_k and the optimiser can step all trainable parameters at once. The query side is laid out as
    /// [f_q frozen | f_q trainable | predictor trainable | predictor frozen] and f_k in f_q's order, so f_q is one slice
    /// (averaged into f_k) and the trainable parameters another (returned, in <see cref="TrainableParameters"/>'s order).
    /// Names, shapes and values are unchanged. Call after <c>to(device)</c>; a second call returns the same buffer.
    /// </summary>
    public ParameterBuffer FlattenParameters()
    {
        if (trainableBuffer is not null) return trainableBuffer;
        var q = base_encoder.parameters().ToArray();
        var k = momentum_encoder.parameters().ToArray();
        var head = predictor.parameters().ToArray();
        var order = Enumerable.Range(0, q.Length).Where(i => !q[i].requires_grad).Concat(Enumerable.Range(0, q.Length).Where(i => q[i].requires_grad)).ToArray();
        int frozen = q.Count(p => !p.requires_grad);
        var trainableHead = head.Where(p => p.requires_grad).ToArray();
        queryBuffer = ParameterBuffer.Pack(order.Select(i => q[i]).Concat(trainableHead).Concat(head.Where(p => !p.requires_grad)));
        momentumBuffer = ParameterBuffer.Pack(order.Select(i => k[i]));
        queryEncoderValues = queryBuffer.Values.narrow(0, 0, momentumBuffer.Count).DetachFromDisposeScope();
        momentumValues = momentumBuffer.Values;
        trainableBuffer = queryBuffer.Slice(frozen, q.Length - frozen + trainableHead.Length);
        return trainableBuffer;
    }

    /// <summary>The trainable parameters' buffer after <see cref="FlattenParameters"/>; null before.</summary>
    public ParameterBuffer? FlatTrainableParameters => trainableBuffer;

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            trainableBuffer?.Dispose();
            queryEncoderValues?.Dispose();
            queryBuffer?.Dispose();
            momentumBuffer?.Dispose();
        }
        base.Dispose(disposing);
    }

    /// <summary>
    /// InfoNCE between queries and keys of the same N images: logits q̂·k̂ᵀ/τ, the positive of row i is column i,
    /// scaled by 2τ (paper §5: makes the loss less sensitive to τ). Computed in fp32.
    /// </summary>
    public static Tensor ContrastiveLoss(Tensor q, Tensor k, double temperature)
    {
        q = nn.functional.normalize(q.to_type(ScalarType.Float32), dim: 1);
        k = nn.functional.normalize(k.to_type(ScalarType.Float32), dim: 1);
        var logits = matmul(q, k.t()) / temperature;
        var labels = arange(q.shape[0], dtype: ScalarType.Int64, device: q.device);
        return nn.functional.cross_entropy(logits, labels) * (2 * temperature);
    }
}
