namespace MoCoV3.Distributed;

/// <summary>The argument checks every <see cref="ICommunicator"/> makes, with the same messages.</summary>
internal static class CollectiveArguments
{
    public static void CheckGather(int localLength, int allLength, int size)
    {
        if ((long)localLength * size != allLength)
            throw new ArgumentException(
                $"all-gather of {localLength} elements per rank over {size} ranks needs a result of {(long)localLength * size} elements, not {allLength}");
    }

    public static void CheckRoot(int root, int size)
    {
        if (root < 0 || root >= size)
            throw new ArgumentOutOfRangeException(nameof(root), root, $"broadcast root must be a rank in [0, {size})");
    }

    public static void CheckElement<T>(bool reduction)
    {
        if (typeof(T) == typeof(float) || typeof(T) == typeof(double) || typeof(T) == typeof(int) || typeof(T) == typeof(long)) return;
        if (typeof(T) == typeof(byte) && !reduction) return;
        throw new ArgumentException(reduction
            ? $"all-reduce sums float, double, int or long elements, not {typeof(T).Name}"
            : $"collectives move float, double, int, long or byte elements, not {typeof(T).Name}");
    }
}
