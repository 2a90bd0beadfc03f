namespace MoCoV3.Distributed;

/// <summary>
/// This rank's rows of a global batch, as the official <c>main_moco.py</c> splits <c>--batch-size</c>: every rank takes
/// <see cref="Count"/> = B / ranks contiguous rows, rank r the rows [r·B/ranks, (r+1)·B/ranks) of the same global batch.
/// One process takes the whole batch.
/// </summary>
public readonly record struct BatchSlice(int Offset, int Count, int GlobalCount)
{
    /// <summary>The whole batch of <paramref name="batch"/> rows (one process).</summary>
    public static BatchSlice Whole(int batch) => new(0, batch, batch);

    /// <summary>The rows of rank <paramref name="rank"/> of <paramref name="ranks"/> in a global batch of <paramref name="batch"/>.</summary>
    /// <exception cref="ArgumentException">The batch does not split evenly over the ranks.</exception>
    public static BatchSlice Of(int batch, int rank, int ranks)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(ranks, 1);
        ArgumentOutOfRangeException.ThrowIfNegative(rank);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(rank, ranks);
        if (batch % ranks != 0)
            throw new ArgumentException($"--batch {batch} does not split evenly over {ranks} ranks: --batch is the global batch, " +
                                        $"divided among the ranks; use a multiple of {ranks} (e.g. {Math.Max(ranks, batch / ranks * ranks)} or {(batch / ranks + 1) * ranks})");
        int count = batch / ranks;
        return new BatchSlice(rank * count, count, batch);
    }

    /// <summary>
    /// The rows of rank <paramref name="rank"/> of <paramref name="ranks"/> in a set of <paramref name="rows"/> that need not
    /// split evenly (the last, smaller batch of an epoch; a test set shared out for evaluation): rank r takes
    /// [⌊r·n/ranks⌋, ⌊(r+1)·n/ranks⌋), so the slices differ by one row at most and a rank may get none. When the rows do
    /// split evenly this is <see cref="Of"/>.
    /// </summary>
    public static BatchSlice Spread(int rows, int rank, int ranks)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(rows);
        ArgumentOutOfRangeException.ThrowIfLessThan(ranks, 1);
        ArgumentOutOfRangeException.ThrowIfNegative(rank);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(rank, ranks);
        int start = (int)((long)rank * rows / ranks), end = (int)((long)(rank + 1) * rows / ranks);
        return new BatchSlice(start, end - start, rows);
    }

    /// <summary>Whether this is the whole batch.</summary>
    public bool IsWhole => Offset == 0 && Count == GlobalCount;
}
