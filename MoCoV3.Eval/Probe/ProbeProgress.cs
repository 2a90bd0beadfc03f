namespace MoCoV3.Eval.Probe;

/// <summary>
/// Where a probe is: <paramref name="Name"/> (<c>encoder</c>, <c>raw-pixels</c>, <c>random-init</c>), the stage
/// (<see cref="ProbeStages"/>), and <paramref name="Done"/> of <paramref name="Total"/> (images while featurizing, fits
/// while sweeping and fitting).
/// </summary>
public readonly record struct ProbeProgress(string Name, string Stage, int Done, int Total);
