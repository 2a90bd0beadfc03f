namespace MoCoV3.Evaluation;

/// <summary>A kNN measurement during pretraining: after <paramref name="Step"/>, taking <paramref name="Seconds"/>.</summary>
public sealed record KnnEvaluation(long Step, double Epoch, KnnResult Result, double Seconds);
