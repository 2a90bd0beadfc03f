using MoCoV3.Data;

namespace MoCoV3.Evaluation;

/// <summary>
/// The images of a kNN evaluation: indices into the train split (the labelled bank) and into the test split (the
/// queries). Subsets are spread evenly over a split (image i·count/take), so a folder sorted by class still gives every
/// class, and they are the same in every process. When the two splits are one source (a CSV manifest, a folder
/// without train/test sub-folders), the queries are held out of the bank.
/// </summary>
public sealed record KnnSubsets(int[] Train, int[] Test, bool HeldOut)
{
    /// <summary>Share of a single source held out as queries when there is no test split (at most).</summary>
    private const int HoldOutDivisor = 5;

    /// <summary><paramref name="take"/> indices of [0, <paramref name="count"/>) spread evenly, ascending (all of them when take ≥ count).</summary>
    public static int[] Spread(int count, int take)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        ArgumentOutOfRangeException.ThrowIfNegative(take);
        take = Math.Min(take, count);
        var indices = new int[take];
        for (int i = 0; i < take; i++) indices[i] = (int)((long)i * count / take);
        return indices;
    }

    /// <summary>
    /// Up to <paramref name="trainCount"/> bank images and <paramref name="testCount"/> queries.
    /// </summary>
    /// <exception cref="ArgumentException">The splits have different classes, or there are too few images.</exception>
    public static KnnSubsets Choose(IImageDataset train, IImageDataset test, int trainCount, int testCount)
    {
        ArgumentNullException.ThrowIfNull(train);
        ArgumentNullException.ThrowIfNull(test);
        if (trainCount < 1) throw new ArgumentException($"the kNN bank needs at least 1 train image, {trainCount} were asked for");
        if (testCount < 1) throw new ArgumentException($"kNN needs at least 1 test image, {testCount} were asked for");
        if (!train.ClassNames.SequenceEqual(test.ClassNames, StringComparer.Ordinal))
            throw new ArgumentException($"{test.Source}: the test split's classes ({Names(test.ClassNames)}) are not those of " +
                                        $"the train split {train.Source} ({Names(train.ClassNames)})");
        if (train.Source != test.Source)
            return new KnnSubsets(Spread(train.Count, trainCount), Spread(test.Count, testCount), HeldOut: false);

        if (train.Count < 2)
            throw new ArgumentException($"{train.Source}: kNN needs a separate test split or at least 2 images to hold one out, found {train.Count}");
        int[] queries = Spread(train.Count, Math.Min(testCount, Math.Max(1, train.Count / HoldOutDivisor)));
        var inQueries = new HashSet<int>(queries);
        int[] rest = Enumerable.Range(0, train.Count).Where(i => !inQueries.Contains(i)).ToArray();
        int[] bank = Spread(rest.Length, trainCount).Select(i => rest[i]).ToArray();
        return new KnnSubsets(bank, queries, HeldOut: true);
    }

    private static string Names(IReadOnlyList<string> names) =>
        names.Count <= 6 ? string.Join(", ", names) : $"{string.Join(", ", names.Take(6))}, … {names.Count} in all";
}
