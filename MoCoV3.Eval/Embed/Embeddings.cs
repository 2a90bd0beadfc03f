using MoCoV3.Data;

namespace MoCoV3.Eval.Embed;

/// <summary>
/// <paramref name="Count"/> embeddings of <paramref name="Dim"/> values, one after another in <paramref name="Values"/>,
/// and the label of each (<see cref="FlatImageFolderDataset.NoLabel"/> for unlabelled images).
/// </summary>
public sealed record Embeddings(float[] Values, long[] Labels, int Count, int Dim)
{
    public ReadOnlySpan<float> Row(int i) => Values.AsSpan(i * Dim, Dim);
}
