using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MoCoV3.Optim;

/// <summary>
/// PyTorch-semantics AdamW (decoupled weight decay <c>p ← p·(1 − lr·wd)</c> on every trainable parameter,
/// betas (0.9, 0.999), eps 1e-8), as in the official MoCo v3 ViT recipe; a thin wrapper over
/// <c>torch.optim.AdamW</c>.
/// </summary>
public sealed class AdamWOptimizer : ITrainingOptimizer
{
    private readonly Parameter[] parameters;
    private readonly AdamW optimizer;

    /// <param name="parameters">Parameters to update; those with <c>requires_grad == false</c> are dropped.</param>
    public AdamWOptimizer(IEnumerable<Parameter> parameters, double lr, double weightDecay,
        double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        this.parameters = parameters.Where(p => p.requires_grad).ToArray();
        optimizer = optim.AdamW(this.parameters, lr, beta1: beta1, beta2: beta2, eps: eps, weight_decay: weightDecay);
    }

    public IReadOnlyList<Parameter> Parameters => parameters;

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
        // TorchSharp's zero_grad leaves the wrapper that zero_() returns to the finalizer; the scope disposes it.
        using var scope = NewDisposeScope();
        optimizer.zero_grad();
    }

    public void Step() => optimizer.step();

    /// <summary>TorchSharp's optimizer format: per group the options (lr included), per parameter the step count and both moments.</summary>
    public void Save(BinaryWriter writer)
    {
        ArgumentNullException.ThrowIfNull(writer);
        optimizer.save_state_dict(writer);
    }

    public void Load(BinaryReader reader)
    {
        ArgumentNullException.ThrowIfNull(reader);
        optimizer.load_state_dict(reader);
    }

    public void Dispose() => optimizer.Dispose();
}
