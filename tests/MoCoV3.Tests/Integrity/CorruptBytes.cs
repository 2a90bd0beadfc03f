namespace MoCoV3.Tests.Integrity;

/// <summary>Damages files the way a bad disk or a bad copy does: flipped bytes at a known place.</summary>
internal static class CorruptBytes
{
    /// <summary>Where <paramref name="needle"/> starts in <paramref name="file"/>; it must occur exactly once.</summary>
    public static int Find(byte[] file, ReadOnlySpan<byte> needle)
    {
        int at = file.AsSpan().IndexOf(needle);
        Assert.IsGreaterThanOrEqualTo(0, at, "the bytes to damage are not in the file");
        Assert.AreEqual(-1, file.AsSpan(at + 1).IndexOf(needle), "the bytes to damage occur twice in the file");
        return at;
    }

    /// <summary>Inverts <paramref name="count"/> bytes of the file at <paramref name="path"/> from <paramref name="offset"/>.</summary>
    public static void Flip(string path, long offset, int count = 16)
    {
        byte[] bytes = File.ReadAllBytes(path);
        Assert.IsLessThanOrEqualTo(bytes.Length, offset + count, "flip past the end of the file");
        for (long i = offset; i < offset + count; i++) bytes[i] ^= 0xFF;
        File.WriteAllBytes(path, bytes);
    }
}
