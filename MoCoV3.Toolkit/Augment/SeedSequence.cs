namespace MoCoV3.Augment;

/// <summary>
/// Counter-based seeds: a stable 32-bit seed from (run seed, counters...) via SplitMix64, identical in every
/// process. Randomness drawn from <c>new Random(SeedSequence.Derive(seed, step, view))</c> depends only on the
/// step, so a resumed run draws exactly what an uninterrupted run would.
/// </summary>
public static class SeedSequence
{
    public static int Derive(long seed, params long[] counters)
    {
        ulong state = unchecked((ulong)seed);
        ulong z = Mix(ref state);
        foreach (long c in counters)
        {
            state ^= unchecked((ulong)c) + 0x9E3779B97F4A7C15UL + (z << 6) + (z >> 2);
            z = Mix(ref state);
        }
        return (int)(z & 0x7FFFFFFF);
    }

    private static ulong Mix(ref ulong state)
    {
        unchecked
        {
            ulong z = state += 0x9E3779B97F4A7C15UL;
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
            return z ^ (z >> 31);
        }
    }
}
