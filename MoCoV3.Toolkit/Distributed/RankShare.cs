namespace MoCoV3.Distributed;

/// <summary>
/// Rank <see cref="Rank"/> of <see cref="Ranks"/>: which rows of every global batch it reads. A batch of n rows is shared
/// as <see cref="BatchSlice.Spread"/> shares it — rank r takes [⌊r·n/ranks⌋, ⌊(r+1)·n/ranks⌋) — which is
/// <see cref="BatchSlice.Of"/> whenever n splits evenly, and still defined for the last, smaller batch of an epoch (a rank may
/// then get fewer rows, or none).
/// </summary>
public readonly record struct RankShare
{
    /// <exception cref="ArgumentOutOfRangeException">Fewer than one rank, or a rank outside [0, ranks).</exception>
    public RankShare(int rank, int ranks)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(ranks, 1);
        ArgumentOutOfRangeException.ThrowIfNegative(rank);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(rank, ranks);
        (Rank, Ranks) = (rank, ranks);
    }

    public int Rank { get; }
    public int Ranks { get; }

    /// <summary>This rank's rows of a global batch of <paramref name="rows"/>.</summary>
    public BatchSlice Of(int rows) => BatchSlice.Spread(rows, Rank, Ranks);
}
