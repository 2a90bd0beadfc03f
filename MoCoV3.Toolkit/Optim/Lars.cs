using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MoCoV3.Optim;

/// <summary>
/// LARS as in the official MoCo v3 ResNet recipe. For every parameter <c>p</c> with gradient <c>g</c>:
/// if <c>p.dim() &gt; 1</c>, <c>g ← g + wd·p</c> and then <c>g ← g · (η‖p‖/‖g‖)</c>, the ratio being 1
/// when either norm is 0; parameters with <c>p.dim() ≤ 1</c> (BN γ/β, biases) get neither weight decay
/// nor scaling. Then <c>μ ← momentum·μ + g</c> (μ starts at zero) and <c>p ← p − lr·μ</c>.
/// Given a <see cref="ParameterBuffer"/>, the momentum buffers are views of one flat tensor and the step runs over the flat
/// tensors: two norms per matrix parameter for the trust ratios, the rest a handful of kernels for all parameters.
/// </summary>
public sealed class Lars : ITrainingOptimizer
{
    private const string Magic = "MoCoV3.Lars";
    private const int FormatVersion = 1;

    private readonly Parameter[] parameters;
    private readonly Tensor[] momentumBuffers;
    private readonly double weightDecay;
    private readonly double momentum;
    private readonly double trustCoefficient;
    private readonly FlatState? flat;
    private bool disposed;

    /// <param name="parameters">Parameters to update; those with <c>requires_grad == false</c> are dropped.</param>
    /// <param name="lr">Initial learning rate (the training loop overwrites it every iteration).</param>
    /// <param name="weightDecay">Weight decay, added to the gradient of parameters with more than one dimension.</param>
    /// <param name="momentum">Momentum of the update buffer.</param>
    /// <param name="trustCoefficient">η in the layer-wise trust ratio η‖p‖/‖g‖.</param>
    public Lars(IEnumerable<Parameter> parameters, double lr, double weightDecay, double momentum = 0.9, double trustCoefficient = 0.001)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        if (!(lr >= 0)) throw new ArgumentOutOfRangeException(nameof(lr), lr, "learning rate must be >= 0");
        if (!(weightDecay >= 0)) throw new ArgumentOutOfRangeException(nameof(weightDecay), weightDecay, "weight decay must be >= 0");
        if (!(momentum >= 0)) throw new ArgumentOutOfRangeException(nameof(momentum), momentum, "momentum must be >= 0");
        if (!(trustCoefficient > 0)) throw new ArgumentOutOfRangeException(nameof(trustCoefficient), trustCoefficient, "trust coefficient must be > 0");

        this.parameters = parameters.Where(p => p.requires_grad).ToArray();
        LearningRate = lr;
        this.weightDecay = weightDecay;
        this.momentum = momentum;
        this.trustCoefficient = trustCoefficient;

        // Created outside any caller's dispose scope: the buffers live as long as the optimiser.
        momentumBuffers = new Tensor[this.parameters.Length];
        using (no_grad())
        {
            for (int i = 0; i < this.parameters.Length; i++)
                momentumBuffers[i] = zeros_like(this.parameters[i]).DetachFromDisposeScope();
        }
    }

    /// <summary>
    /// LARS over packed parameters (all trainable): every gradient becomes a view of the buffer's flat gradient tensor
    /// (<see cref="ParameterBuffer.AttachGradients"/>), the momentum buffers views of one flat tensor.
    /// </summary>
    public Lars(ParameterBuffer parameters, double lr, double weightDecay, double momentum = 0.9, double trustCoefficient = 0.001)
        : this(RequireTrainable(parameters), lr, weightDecay, momentum, trustCoefficient)
    {
        flat = new FlatState(parameters, momentumBuffers, weightDecay);
    }

    private static IReadOnlyList<Parameter> RequireTrainable(ParameterBuffer buffer)
    {
        ArgumentNullException.ThrowIfNull(buffer);
        int frozen = buffer.Parameters.Count(p => !p.requires_grad);
        if (frozen > 0) throw new ArgumentException($"a packed LARS steps every parameter of its buffer: {frozen} of them do not require a gradient");
        return buffer.Parameters;
    }

    /// <summary>Whether steps run over one flat buffer (constructed from a <see cref="ParameterBuffer"/>).</summary>
    public bool IsFlat => flat is not null;

    public IReadOnlyList<Parameter> Parameters => parameters;

    public double LearningRate { get; set; }

    public double WeightDecay => weightDecay;

    public double Momentum => momentum;

    public double TrustCoefficient => trustCoefficient;

    public void ZeroGrad()
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        if (flat is not null)
        {
            flat.Buffer.ZeroGradients();
            return;
        }
        // Both the grad accessor and zero_() hand back fresh managed wrappers; the scope disposes them.
        using var scope = NewDisposeScope();
        foreach (var p in parameters)
            p.grad?.zero_();
    }

    public void Step()
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        // Scalars are not tracked by dispose scopes: make the few this step needs and dispose them here.
        using Scalar wd = weightDecay.ToScalar(), eta = trustCoefficient.ToScalar(), mom = momentum.ToScalar(),
            negLr = (-LearningRate).ToScalar(), zero = 0.0.ToScalar();
        if (flat is not null)
        {
            flat.Step(eta, mom, negLr, zero);
            return;
        }
        for (int i = 0; i < parameters.Length; i++)
        {
            var p = parameters[i];
            var g = p.grad;
            if (g is null) continue;
            if (p.dim() > 1)
            {
                g = g.add(p, alpha: wd);
                // No host sync: the ratio stays on the device, 1 where either norm is 0.
                var paramNorm = p.norm();
                var updateNorm = g.norm();
                var one = ones_like(paramNorm);
                var ratio = where(paramNorm.gt(zero), where(updateNorm.gt(zero), paramNorm.mul(eta).div(updateNorm), one), one);
                g = g.mul(ratio);
            }
            momentumBuffers[i].mul_(mom).add_(g);
            p.add_(momentumBuffers[i], alpha: negLr);
        }
    }

    /// <summary>Writes a header, the learning rate and every momentum buffer (TorchSharp tensor format).</summary>
    public void Save(BinaryWriter writer)
    {
        ArgumentNullException.ThrowIfNull(writer);
        ObjectDisposedException.ThrowIf(disposed, this);
        writer.Write(Magic);
        writer.Write(FormatVersion);
        writer.Write(LearningRate);
        writer.Write(momentumBuffers.Length);
        foreach (var mu in momentumBuffers)
            mu.Save(writer);
    }

    /// <summary>Restores what <see cref="Save"/> wrote; the buffer count, shapes and dtypes must match.</summary>
    public void Load(BinaryReader reader)
    {
        ArgumentNullException.ThrowIfNull(reader);
        ObjectDisposedException.ThrowIf(disposed, this);
        string magic = reader.ReadString();
        if (magic != Magic)
            throw new InvalidDataException($"LARS state: expected a '{Magic}' stream, found '{magic}'");
        int version = reader.ReadInt32();
        if (version != FormatVersion)
            throw new InvalidDataException($"LARS state: unsupported format version {version} (this build reads {FormatVersion})");
        double lr = reader.ReadDouble();
        int count = reader.ReadInt32();
        if (count != momentumBuffers.Length)
            throw new InvalidDataException($"LARS state: the stream holds {count} momentum buffers, this optimiser has {momentumBuffers.Length} trainable parameters");

        // Read everything first so that a mismatch leaves the optimiser unchanged.
        var loaded = new Tensor[count];
        try
        {
            for (int i = 0; i < count; i++)
            {
                loaded[i] = Tensor.Load(reader);
                var expected = momentumBuffers[i];
                if (!loaded[i].shape.SequenceEqual(expected.shape) || loaded[i].dtype != expected.dtype)
                    throw new InvalidDataException(
                        $"LARS state: momentum buffer {i} is {loaded[i].dtype}[{string.Join(", ", loaded[i].shape)}], " +
                        $"the parameter is {expected.dtype}[{string.Join(", ", expected.shape)}]");
            }
            using (no_grad())
            {
                for (int i = 0; i < count; i++)
                    momentumBuffers[i].copy_(loaded[i]);
            }
            LearningRate = lr;
        }
        finally
        {
            foreach (var t in loaded) t?.Dispose();
        }
    }

    public void Dispose()
    {
        if (disposed) return;
        disposed = true;
        foreach (var mu in momentumBuffers) mu.Dispose();
        flat?.Dispose();
    }

    /// <summary>The flat momentum, weight-decay mask and scratch of the packed path.</summary>
    private sealed class FlatState : IDisposable
    {
        private readonly Tensor momentum, decay, update, counts, matrixIndex;
        private readonly int[] matrices;      // indices of the parameters with more than one dimension
        private readonly Tensor[] updateViews; // their slices of update

        public FlatState(ParameterBuffer buffer, Tensor[] momentumBuffers, double weightDecay)
        {
            Buffer = buffer;
            buffer.AttachGradients();
            var values = buffer.Values;
            var ps = buffer.Parameters;
            momentum = zeros_like(values).DetachFromDisposeScope();
            update = empty_like(values).DetachFromDisposeScope();
            decay = zeros_like(values).DetachFromDisposeScope();
            matrices = Enumerable.Range(0, ps.Count).Where(i => ps[i].dim() > 1).ToArray();
            updateViews = new Tensor[matrices.Length];
            using (no_grad())
            {
                for (int i = 0; i < ps.Count; i++)
                {
                    // Swap each per-parameter buffer for its view of the flat one (Save and Load go through them).
                    momentumBuffers[i].Dispose();
                    momentumBuffers[i] = buffer.ViewOf(momentum, i).DetachFromDisposeScope();
                }
                for (int j = 0; j < matrices.Length; j++)
                {
                    using var d = buffer.ViewOf(decay, matrices[j]);
                    d.fill_(weightDecay);
                    updateViews[j] = buffer.ViewOf(update, matrices[j]).DetachFromDisposeScope();
                }
            }
            // Each parameter's elements and the padding after it (zeros: its ratio does not matter there).
            counts = tensor(Enumerable.Range(0, ps.Count).Select(i => buffer.Offset(i + 1) - buffer.Offset(i)).ToArray(), device: values.device).DetachFromDisposeScope();
            matrixIndex = tensor(matrices.Select(i => (long)i).ToArray(), device: values.device).DetachFromDisposeScope();
        }

        public ParameterBuffer Buffer { get; }

        /// <summary><see cref="Lars.Step"/> over the flat tensors: the same operations, the ratios of all matrices at once.</summary>
        public void Step(Scalar eta, Scalar mom, Scalar negLr, Scalar zero)
        {
            var grad = Buffer.GatherGradients();
            var values = Buffer.Values;
            // g ← g + wd·p on the matrices (decay is wd there, 0 elsewhere), into a scratch: the gradients stay as they are.
            update.copy_(grad).addcmul_(decay, values, value: 1);
            if (matrices.Length > 0)
            {
                var paramNorms = stack(matrices.Select(i => Buffer.Parameters[i].norm()).ToList());
                var updateNorms = stack(updateViews.Select(u => u.norm()).ToList());
                var one = ones_like(paramNorms);
                var ratio = where(paramNorms.gt(zero), where(updateNorms.gt(zero), paramNorms.mul(eta).div(updateNorms), one), one);
                // One ratio per parameter (1 for vectors), spread over its elements.
                var perParameter = ones(Buffer.Parameters.Count, dtype: ratio.dtype, device: ratio.device).index_copy_(0, matrixIndex, ratio);
                update.mul_(perParameter.repeat_interleave(counts, output_size: Buffer.Count));
            }
            momentum.mul_(mom).add_(update);
            values.add_(momentum, alpha: negLr);
        }

        public void Dispose()
        {
            foreach (var u in updateViews) u.Dispose();
            momentum.Dispose();
            update.Dispose();
            decay.Dispose();
            counts.Dispose();
            matrixIndex.Dispose();
        }
    }
}
