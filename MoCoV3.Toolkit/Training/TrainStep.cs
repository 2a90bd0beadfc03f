using MoCoV3.Method;
using MoCoV3.Models;
using MoCoV3.Optim;
using static TorchSharp.torch;

namespace MoCoV3.Training;

/// <summary>One optimisation step of MoCo v3, shared by <see cref="Pretrainer"/> and <see cref="StepBenchmark"/>.</summary>
public static class TrainStep
{
    /// <summary>
    /// Sets lr, computes the loss of the two views (updating f_k with momentum m), back-propagates, clips the gradients
    /// when <paramref name="clip"/> is given, steps. With <paramref name="amp"/> (bf16), the forward pass runs under
    /// <see cref="Autocast"/> and backward outside it, as with <c>torch.autocast</c>; parameters, gradients and optimiser
    /// state stay fp32 (bf16 needs no loss scaling, so clipping sees the true gradients). In a data-parallel run
    /// <paramref name="averager"/> averages the gradients over the ranks after backward, before clipping and the step
    /// (so clipping sees the global gradient norm, as with DDP).
    /// </summary>
    public static Tensor Run(MoCo model, ITrainingOptimizer optimizer, Tensor x1, Tensor x2, double lr, double m,
        GradientClipping? clip = null, ScalarType? amp = null, Distributed.GradientAverager? averager = null)
    {
        optimizer.LearningRate = lr;
        Tensor loss;
        using (Autocast.Enable(amp))
            loss = model.forward(x1, x2, m);
        optimizer.ZeroGrad();
        loss.backward();
        averager?.Average();
        clip?.Apply(optimizer.Parameters);
        optimizer.Step();
        return loss;
    }

    /// <summary>
    /// The preset's optimiser over the model's trainable parameters. <paramref name="packed"/> (the default) first packs
    /// the model's parameters into flat buffers (<see cref="MoCo.FlattenParameters"/>), so that the momentum update and
    /// the optimiser step run as a few large kernels; call it after the model is on its device. Without it, both loop
    /// over the parameters (the same numbers up to float rounding; <c>mocov3 bench --per-parameter</c> times that path).
    /// </summary>
    public static ITrainingOptimizer CreateOptimizer(Models.ModelPreset preset, MoCo model, double lr, bool packed = true)
    {
        if (packed)
        {
            var buffer = model.FlattenParameters();
            return preset.Recipe.Optimizer switch
            {
                OptimizerKind.AdamW => new AdamWOptimizer(buffer, lr, preset.Recipe.WeightDecay),
                OptimizerKind.Lars => new Lars(buffer, lr, preset.Recipe.WeightDecay),
                _ => throw new ArgumentException($"unknown optimizer {(int)preset.Recipe.Optimizer}"),
            };
        }
        var parameters = model.TrainableParameters().ToList();
        return preset.Recipe.Optimizer switch
        {
            OptimizerKind.AdamW => new AdamWOptimizer(parameters, lr, preset.Recipe.WeightDecay),
            OptimizerKind.Lars => new Lars(parameters, lr, preset.Recipe.WeightDecay),
            _ => throw new ArgumentException($"unknown optimizer {(int)preset.Recipe.Optimizer}"),
        };
    }
}
