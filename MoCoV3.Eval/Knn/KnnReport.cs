using MoCoV3.Evaluation;

namespace MoCoV3.Eval.Knn;

/// <summary>A kNN evaluation of an exported encoder: the accuracy, what was compared, and where the time went.</summary>
public sealed record KnnReport(KnnResult Result, string TrainSource, string TestSource, bool HeldOut, double EmbedSeconds, double KnnSeconds);
