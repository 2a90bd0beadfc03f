using MoCoV3.Method;
using MoCoV3.Optim;
using static TorchSharp.torch;

namespace MoCoV3.Training;

/// <summary>One optimisation step of MoCo v3, shared by <see cref="Pretrainer"/> and <see cref="StepBenchmark"/>.</summary>
public static class TrainStep
{
    /// <summary>
    /// Sets lr, computes the loss of the two views (updating f_k with momentum m), back-propagates, clips the gradients
    /// when <paramref name="clip"/> is given, steps.
    /// </summary>
    public static Tensor Run(MoCo model, ITrainingOptimizer optimizer, Tensor x1, Tensor x2, double lr, double m, GradientClipping? clip = null)
    {
        optimizer.LearningRate = lr;
        var loss = model.forward(x1, x2, m);
        optimizer.ZeroGrad();
        loss.backward();
        clip?.Apply(optimizer.Parameters);
        optimizer.Step();
        return loss;
    }

    public static ITrainingOptimizer CreateOptimizer(Models.ModelPreset preset, MoCo model, double lr)
    {
        var parameters = model.TrainableParameters().ToList();
        return preset.Optimizer switch
        {
            "adamw" => new AdamWOptimizer(parameters, lr, preset.WeightDecay),
            "lars" => new Lars(parameters, lr, preset.WeightDecay),
            _ => throw new ArgumentException($"unknown optimizer '{preset.Optimizer}'"),
        };
    }
}
