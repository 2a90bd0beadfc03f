namespace MoCoV3.Training;

/// <summary>
/// What happens after an optimiser step besides training: a metrics row (every <c>--log-every</c> steps, the first and the
/// last step, and with every kNN evaluation), a kNN evaluation (every <c>--knn-every</c> steps and at the end) and a
/// checkpoint (every <c>--save-every</c> steps, else once per epoch, and at the end).
/// </summary>
public sealed class StepPolicy(int logEvery, long? knnEvery, long? saveEvery, int stepsPerEpoch)
{
    public static StepPolicy For(PretrainOptions options, bool knn, int stepsPerEpoch) =>
        new(options.LogEvery, knn ? options.KnnEvery : null, options.SaveEvery, stepsPerEpoch);

    /// <summary>The actions after <paramref name="step"/> steps are done, of a run of <paramref name="totalSteps"/>.</summary>
    public StepActions After(long step, long totalSteps)
    {
        bool last = step >= totalSteps;
        bool knn = knnEvery is long k && (step % k == 0 || last);
        bool log = step % logEvery == 0 || last || step == 1 || knn;
        bool save = last || (saveEvery is long every ? step % every == 0 : step % stepsPerEpoch == 0);
        return new StepActions(log, knn, save, last);
    }
}

/// <summary>The actions of <see cref="StepPolicy"/> after one step.</summary>
public readonly record struct StepActions(bool Log, bool Knn, bool Save, bool Last);
