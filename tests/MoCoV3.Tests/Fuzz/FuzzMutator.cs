using System.Buffers.Binary;

namespace MoCoV3.Tests.Fuzz;

/// <summary>
/// Seeded mutations of a valid file: bit flips, overwrites with boundary values (0, 0xFF, 0x7FFFFFFF, …), truncation,
/// chunk duplication and deletion, and inflation of what may be a length field (a 32- or 64-bit integer, little- or
/// big-endian, or a run of ASCII digits). The same seed and input give the same output, so a failing case replays.
/// </summary>
internal static class FuzzMutator
{
    private static readonly byte[] InterestingBytes = [0x00, 0x01, 0x7F, 0x80, 0xFE, 0xFF];

    private static readonly uint[] InterestingInts =
        [0, 1, 0x7F, 0x80, 0xFF, 0x100, 0xFFFF, 0x10000, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0xFFFFFFFE];

    private static readonly string[] InterestingNumbers =
        ["0", "-1", "2147483647", "2147483648", "-2147483648", "9999999999999999999", "1e308", "NaN", "65536"];

    /// <summary>Applies one to three mutations chosen by <paramref name="random"/>; <paramref name="log"/> says which.</summary>
    public static byte[] Mutate(byte[] input, Random random, List<string> log)
    {
        byte[] data = input;
        int count = 1 + random.Next(3);
        for (int i = 0; i < count; i++)
            data = MutateOnce(data, random, log);
        return data;
    }

    private static byte[] MutateOnce(byte[] data, Random random, List<string> log)
    {
        if (data.Length == 0)
        {
            log.Add("insert 1 byte into an empty file");
            return [InterestingBytes[random.Next(InterestingBytes.Length)]];
        }
        switch (random.Next(8))
        {
            case 0:
                return FlipBits(data, random, log);
            case 1:
                return OverwriteByte(data, random, log);
            case 2:
                return OverwriteInt(data, random, log);
            case 3:
                return Truncate(data, random, log);
            case 4:
                return Duplicate(data, random, log);
            case 5:
                return Delete(data, random, log);
            case 6:
                return InflateInt(data, random, log);
            default:
                return ReplaceNumber(data, random, log);
        }
    }

    private static byte[] FlipBits(byte[] data, Random random, List<string> log)
    {
        byte[] copy = (byte[])data.Clone();
        int flips = 1 + random.Next(8);
        for (int i = 0; i < flips; i++)
        {
            int at = random.Next(copy.Length);
            int bit = random.Next(8);
            copy[at] ^= (byte)(1 << bit);
            log.Add($"flip bit {bit} at {at}");
        }
        return copy;
    }

    private static byte[] OverwriteByte(byte[] data, Random random, List<string> log)
    {
        byte[] copy = (byte[])data.Clone();
        int at = random.Next(copy.Length);
        copy[at] = InterestingBytes[random.Next(InterestingBytes.Length)];
        log.Add($"byte at {at} := 0x{copy[at]:X2}");
        return copy;
    }

    private static byte[] OverwriteInt(byte[] data, Random random, List<string> log)
    {
        if (data.Length < 4)
            return OverwriteByte(data, random, log);
        byte[] copy = (byte[])data.Clone();
        int at = random.Next(copy.Length - 3);
        uint value = InterestingInts[random.Next(InterestingInts.Length)];
        bool bigEndian = random.Next(2) == 0;
        if (bigEndian)
            BinaryPrimitives.WriteUInt32BigEndian(copy.AsSpan(at), value);
        else
            BinaryPrimitives.WriteUInt32LittleEndian(copy.AsSpan(at), value);
        log.Add($"uint32 {(bigEndian ? "BE" : "LE")} at {at} := 0x{value:X8}");
        return copy;
    }

    private static byte[] Truncate(byte[] data, Random random, List<string> log)
    {
        int length = random.Next(data.Length);
        log.Add($"truncate to {length} bytes");
        return data[..length];
    }

    private static byte[] Duplicate(byte[] data, Random random, List<string> log)
    {
        int start = random.Next(data.Length);
        int length = 1 + random.Next(Math.Min(256, data.Length - start));
        int at = random.Next(data.Length + 1);
        log.Add($"copy {length} bytes from {start} to {at}");
        return [.. data.AsSpan(0, at), .. data.AsSpan(start, length), .. data.AsSpan(at)];
    }

    private static byte[] Delete(byte[] data, Random random, List<string> log)
    {
        int start = random.Next(data.Length);
        int length = 1 + random.Next(Math.Min(256, data.Length - start));
        log.Add($"delete {length} bytes at {start}");
        return [.. data.AsSpan(0, start), .. data.AsSpan(start + length)];
    }

    /// <summary>Makes an integer at a random offset much larger, as a length or count field would be inflated.</summary>
    private static byte[] InflateInt(byte[] data, Random random, List<string> log)
    {
        byte[] copy = (byte[])data.Clone();
        bool wide = copy.Length >= 8 && random.Next(3) == 0;
        int width = wide ? 8 : 4;
        if (copy.Length < width)
            return OverwriteByte(data, random, log);
        int at = random.Next(copy.Length - width + 1);
        bool bigEndian = random.Next(2) == 0;
        Span<byte> field = copy.AsSpan(at, width);
        ulong value = wide
            ? (bigEndian ? BinaryPrimitives.ReadUInt64BigEndian(field) : BinaryPrimitives.ReadUInt64LittleEndian(field))
            : (bigEndian ? BinaryPrimitives.ReadUInt32BigEndian(field) : BinaryPrimitives.ReadUInt32LittleEndian(field));
        int shift = 4 + random.Next(wide ? 40 : 24);
        ulong inflated = (value << shift) | (1UL << shift);
        if (wide)
        {
            if (bigEndian) BinaryPrimitives.WriteUInt64BigEndian(field, inflated);
            else BinaryPrimitives.WriteUInt64LittleEndian(field, inflated);
        }
        else if (bigEndian)
        {
            BinaryPrimitives.WriteUInt32BigEndian(field, (uint)inflated);
        }
        else
        {
            BinaryPrimitives.WriteUInt32LittleEndian(field, (uint)inflated);
        }
        log.Add($"inflate {(wide ? "uint64" : "uint32")} {(bigEndian ? "BE" : "LE")} at {at} by 2^{shift}");
        return copy;
    }

    /// <summary>Replaces a run of ASCII digits (a number in JSON or CSV text) with a boundary number.</summary>
    private static byte[] ReplaceNumber(byte[] data, Random random, List<string> log)
    {
        int start = random.Next(data.Length);
        int at = Array.FindIndex(data, start, IsDigit);
        if (at < 0)
            at = Array.FindIndex(data, IsDigit);
        if (at < 0)
            return InflateInt(data, random, log);
        int end = at;
        while (end < data.Length && IsDigit(data[end]))
            end++;
        string number = InterestingNumbers[random.Next(InterestingNumbers.Length)];
        log.Add($"number at {at} ({end - at} digits) := {number}");
        return [.. data.AsSpan(0, at), .. System.Text.Encoding.ASCII.GetBytes(number), .. data.AsSpan(end)];
    }

    private static bool IsDigit(byte b) => b is >= (byte)'0' and <= (byte)'9';
}
