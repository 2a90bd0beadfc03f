using TorchSharp.Modules;

namespace MoCoV3.Optim;

/// <summary>
/// What the training loop needs from an optimiser: a learning rate it sets every iteration (the schedule
/// is the loop's), a step, and state that a checkpoint can save and restore exactly.
/// </summary>
public interface ITrainingOptimizer : IDisposable
{
    /// <summary>The parameters this optimiser updates (trainable ones only).</summary>
    IReadOnlyList<Parameter> Parameters { get; }

    /// <summary>Learning rate used by the next <see cref="Step"/>; applies to every parameter group.</summary>
    double LearningRate { get; set; }

    void ZeroGrad();

    void Step();

    /// <summary>Writes the full optimiser state (moments, step counts) so that <see cref="Load"/> resumes exactly.</summary>
    void Save(BinaryWriter writer);

    void Load(BinaryReader reader);
}
