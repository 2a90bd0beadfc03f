using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MoCoV3.Optim;

/// <summary>
/// PyTorch-semantics AdamW (decoupled weight decay <c>p ← p·(1 − lr·wd)</c> on every trainable parameter,
/// betas (0.9, 0.999), eps 1e-8), as in the official MoCo v3 ViT recipe; a thin wrapper over
/// <c>torch.optim.AdamW</c>. Given a <see cref="ParameterBuffer"/>, the same update runs over the flat parameter,
/// gradient and moment tensors (a handful of kernels per step instead of about ten per parameter); the moments are then
/// views of two flat tensors inside TorchSharp's optimiser state, so the checkpoint format is the same either way.
/// </summary>
public sealed class AdamWOptimizer : ITrainingOptimizer
{
    private readonly Parameter[] parameters;
    private readonly AdamW optimizer;
    private readonly FlatState? flat;

    /// <param name="parameters">Parameters to update; those with <c>requires_grad == false</c> are dropped.</param>
    public AdamWOptimizer(IEnumerable<Parameter> parameters, double lr, double weightDecay,
        double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        this.parameters = parameters.Where(p => p.requires_grad).ToArray();
        optimizer = optim.AdamW(this.parameters, lr, beta1: beta1, beta2: beta2, eps: eps, weight_decay: weightDecay);
    }

    /// <summary>
    /// AdamW over packed parameters (all trainable): every gradient becomes a view of the buffer's flat gradient tensor
    /// (<see cref="ParameterBuffer.AttachGradients"/>) and each step updates the flat tensors.
    /// </summary>
    public AdamWOptimizer(ParameterBuffer parameters, double lr, double weightDecay,
        double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8)
        : this(RequireTrainable(parameters), lr, weightDecay, beta1, beta2, eps)
    {
        flat = new FlatState(parameters, optimizer.state_dict().State.Cast<AdamW.State>().ToArray());
    }

    private static IReadOnlyList<Parameter> RequireTrainable(ParameterBuffer buffer)
    {
        ArgumentNullException.ThrowIfNull(buffer);
        int frozen = buffer.Parameters.Count(p => !p.requires_grad);
        if (frozen > 0) throw new ArgumentException($"a packed AdamW steps every parameter of its buffer: {frozen} of them do not require a gradient");
        return buffer.Parameters;
    }

    public IReadOnlyList<Parameter> Parameters => parameters;

    /// <summary>Whether steps run over one flat buffer (constructed from a <see cref="ParameterBuffer"/>).</summary>
    public bool IsFlat => flat is not null;

    public double LearningRate
    {
        get => optimizer.ParamGroups.First().LearningRate;
        set
        {
            foreach (var group in optimizer.ParamGroups)
                group.LearningRate = value;
        }
    }

    public void ZeroGrad()
    {
        if (flat is not null)
        {
            flat.Buffer.ZeroGradients();
            return;
        }
        // TorchSharp's zero_grad leaves the wrapper that zero_() returns to the finalizer; the scope disposes it.
        using var scope = NewDisposeScope();
        optimizer.zero_grad();
    }

    public void Step()
    {
        if (flat is null)
        {
            optimizer.step();
            return;
        }
        // The group's options object (loading a checkpoint overwrites it in place, betas and decay included).
        var options = (AdamW.Options)optimizer.state_dict().Options[0];
        flat.Step(LearningRate, options.weight_decay ?? 0, options.beta1 ?? 0.9, options.beta2 ?? 0.999, options.eps ?? 1e-8);
    }

    /// <summary>TorchSharp's optimizer format: per group the options (lr included), per parameter the step count and both moments.</summary>
    public void Save(BinaryWriter writer)
    {
        ArgumentNullException.ThrowIfNull(writer);
        optimizer.save_state_dict(writer);
    }

    public void Load(BinaryReader reader)
    {
        ArgumentNullException.ThrowIfNull(reader);
        optimizer.load_state_dict(reader); // into the moment tensors in place: with a buffer, into its flat moments
        flat?.AfterLoad();
    }

    public void Dispose()
    {
        optimizer.Dispose(); // disposes the moment views; the flat state owns the storage
        flat?.Dispose();
    }

    /// <summary>The flat moments, step count and scratch of the packed path.</summary>
    private sealed class FlatState : IDisposable
    {
        private readonly AdamW.State[] states;
        private readonly Tensor expAvg, expAvgSq, denominator;
        private long step;

        public FlatState(ParameterBuffer buffer, AdamW.State[] states)
        {
            Buffer = buffer;
            this.states = states;
            buffer.AttachGradients();
            var values = buffer.Values;
            expAvg = zeros_like(values).DetachFromDisposeScope();
            expAvgSq = zeros_like(values).DetachFromDisposeScope();
            denominator = empty_like(values).DetachFromDisposeScope();
            if (states.Length != buffer.Parameters.Count) throw new InvalidOperationException($"AdamW holds {states.Length} states for {buffer.Parameters.Count} parameters");
            for (int i = 0; i < states.Length; i++)
            {
                // TorchSharp's state keeps its own zeros per parameter: swap them for views of the flat moments.
                states[i].exp_avg.Dispose();
                states[i].exp_avg_sq.Dispose();
                states[i].exp_avg = buffer.ViewOf(expAvg, i).DetachFromDisposeScope();
                states[i].exp_avg_sq = buffer.ViewOf(expAvgSq, i).DetachFromDisposeScope();
            }
        }

        public ParameterBuffer Buffer { get; }

        /// <summary>
        /// TorchSharp's AdamW step, operation for operation, over the flat tensors. A gradient that is not its view of
        /// the buffer is copied in first (<see cref="ParameterBuffer.GatherGradients"/>).
        /// </summary>
        public void Step(double lr, double weightDecay, double beta1, double beta2, double eps)
        {
            using var noGrad = no_grad();
            using var scope = NewDisposeScope();
            var grad = Buffer.GatherGradients();
            var values = Buffer.Values;
            step += 1;
            foreach (var s in states) s.step = step;
            double biasCorrection1 = 1 - Math.Pow(beta1, step);
            double biasCorrection2 = 1 - Math.Pow(beta2, step);
            values.mul_(1 - lr * weightDecay);
            expAvg.mul_(beta1).add_(grad, alpha: 1 - beta1);
            expAvgSq.mul_(beta2).addcmul_(grad, grad, value: 1 - beta2);
            denominator.copy_(expAvgSq).sqrt_().div_(Math.Sqrt(biasCorrection2)).add_(eps); // a scratch tensor, no allocation
            values.addcdiv_(expAvg, denominator, value: -(lr / biasCorrection1));
        }

        /// <summary>The loaded step counts (one per parameter in the file) must agree: the flat step has one.</summary>
        public void AfterLoad()
        {
            long first = states.Length == 0 ? 0 : states[0].step;
            for (int i = 0; i < states.Length; i++)
            {
                if (states[i].step != first)
                    throw new InvalidDataException($"AdamW state: parameter {i} has taken {states[i].step} steps and parameter 0 {first}; a packed AdamW steps all parameters together");
                if (states[i].max_exp_avg_sq is not null)
                    throw new InvalidDataException("AdamW state: AMSGrad moments are not supported by the packed AdamW");
            }
            step = first;
        }

        public void Dispose()
        {
            expAvg.Dispose();
            expAvgSq.Dispose();
            denominator.Dispose();
        }
    }
}
