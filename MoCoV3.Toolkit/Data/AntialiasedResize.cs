using System.Numerics;

namespace MoCoV3.Data;

/// <summary>
/// Cuts a box out of RGBA pixels and resizes it to a square with a bilinear (triangle) filter whose support grows with
/// the shrink factor, the way PIL's <c>Image.resize(..., BILINEAR)</c> does after <c>Image.crop</c> (torchvision's
/// <c>resized_crop</c> on PIL images): separable, horizontal pass first into 8-bit rows, then vertical, weights
/// normalised per output pixel and applied in 22-bit fixed point, the filter window clamped to the box. Shrinking
/// therefore averages every source pixel (no aliasing) and enlarging is plain bilinear with half-pixel centres.
/// The box may have fractional edges (a box of the full-size image mapped onto a smaller decode).
/// </summary>
/// <remarks>
/// Hand-written: Skia's samplers (linear on mipmaps, cubic) are other filters than PIL's support-scaled triangle, so
/// they cannot give torchvision's views; this one gives them bit-equal on the fixtures of CropParityTests. Written from
/// the description of the algorithm, not from PIL's code. The output is CHW (RGB, or luminance 0.299 R + 0.587 G + 0.114 B for one channel), optionally mirrored.
/// </remarks>
internal static class AntialiasedResize
{
    private const int PrecisionBits = 32 - 8 - 2;
    private const int Half = 1 << (PrecisionBits - 1);

    /// <param name="rgba">The source, rows of <paramref name="width"/> RGBA pixels, <paramref name="rowBytes"/> apart.</param>
    /// <param name="left">Left edge of the box in source pixels (fractional allowed).</param>
    /// <param name="top">Top edge of the box.</param>
    /// <param name="boxWidth">Width of the box (&gt; 0).</param>
    /// <param name="boxHeight">Height of the box (&gt; 0).</param>
    /// <param name="size">Side of the square output.</param>
    /// <param name="channels">3 (RGB) or 1 (luminance).</param>
    /// <param name="flip">Mirror the output left to right.</param>
    /// <param name="destination"><c>channels * size * size</c> bytes, CHW.</param>
    public static unsafe void CropResize(ReadOnlySpan<byte> rgba, int width, int height, int rowBytes, double left, double top,
        double boxWidth, double boxHeight, int size, int channels, bool flip, Span<byte> destination)
    {
        if (boxWidth <= 0 || boxHeight <= 0 || left < 0 || top < 0 || left + boxWidth > width + 1e-9 || top + boxHeight > height + 1e-9)
            throw new ArgumentOutOfRangeException(nameof(boxWidth), $"box ({left}, {top}, {boxWidth} x {boxHeight}) is not inside the "
                + $"{width} x {height} image");
        if (rowBytes < width * 4 || rgba.Length < (long)(height - 1) * rowBytes + width * 4)
            throw new ArgumentException($"expected {height} rows of {width} RGBA pixels {rowBytes} bytes apart, found {rgba.Length} bytes",
                nameof(rgba));
        if (destination.Length != channels * size * size)
            throw new ArgumentException($"expected {channels * size * size} bytes, found {destination.Length}", nameof(destination));

        var horizontal = Taps.For(left, left + boxWidth, width, size);
        var vertical = Taps.For(top, top + boxHeight, height, size);

        // Horizontal pass over the rows the vertical filter reads: [rows][size][RGB].
        int firstRow = vertical.Start[0], endRow = vertical.Start[size - 1] + vertical.Count[size - 1];
        int rowLength = size * 3;
        byte[] rows = new byte[(endRow - firstRow) * rowLength];
        fixed (byte* source0 = rgba)
        fixed (byte* rows0 = rows)
        fixed (int* weights0 = horizontal.Weights)
        {
            for (int y = firstRow; y < endRow; y++)
            {
                byte* source = source0 + (long)y * rowBytes;
                byte* target = rows0 + (long)(y - firstRow) * rowLength;
                for (int x = 0; x < size; x++)
                {
                    int count = horizontal.Count[x];
                    int* w = weights0 + x * horizontal.Stride;
                    byte* p = source + horizontal.Start[x] * 4;
                    int r = Half, g = Half, b = Half;
                    for (int t = 0; t < count; t++, p += 4)
                    {
                        r += p[0] * w[t];
                        g += p[1] * w[t];
                        b += p[2] * w[t];
                    }
                    target[3 * x] = Clip(r);
                    target[3 * x + 1] = Clip(g);
                    target[3 * x + 2] = Clip(b);
                }
            }
        }

        // Vertical pass, one output row at a time, written out as CHW.
        int plane = size * size;
        int[] sums = new int[rowLength];
        for (int y = 0; y < size; y++)
        {
            sums.AsSpan().Fill(Half);
            int start = vertical.Start[y] - firstRow, count = vertical.Count[y];
            ReadOnlySpan<int> w = vertical.Weights.AsSpan(y * vertical.Stride, count);
            for (int t = 0; t < count; t++)
            {
                AddWeighted(rows.AsSpan((start + t) * rowLength, rowLength), w[t], sums);
            }
            int o = y * size;
            for (int x = 0; x < size; x++)
            {
                int at = o + (flip ? size - 1 - x : x);
                byte r = Clip(sums[3 * x]), g = Clip(sums[3 * x + 1]), b = Clip(sums[3 * x + 2]);
                if (channels == 3)
                {
                    destination[at] = r;
                    destination[plane + at] = g;
                    destination[2 * plane + at] = b;
                }
                else
                {
                    destination[at] = (byte)((299 * r + 587 * g + 114 * b + 500) / 1000);
                }
            }
        }
    }

    /// <summary><c>sums[i] += row[i] * weight</c>, a vector of bytes at a time (the same integers as one by one).</summary>
    private static void AddWeighted(ReadOnlySpan<byte> row, int weight, Span<int> sums)
    {
        int i = 0;
        if (Vector.IsHardwareAccelerated)
        {
            var w = new Vector<int>(weight);
            int lanes = Vector<int>.Count;
            for (; i <= row.Length - Vector<byte>.Count; i += Vector<byte>.Count)
            {
                Vector.Widen(new Vector<byte>(row.Slice(i)), out Vector<ushort> low, out Vector<ushort> high);
                Vector.Widen(low, out Vector<uint> a, out Vector<uint> b);
                Vector.Widen(high, out Vector<uint> c, out Vector<uint> d);
                Span<int> s = sums.Slice(i);
                (new Vector<int>(s) + Vector.AsVectorInt32(a) * w).CopyTo(s);
                (new Vector<int>(s.Slice(lanes)) + Vector.AsVectorInt32(b) * w).CopyTo(s.Slice(lanes));
                (new Vector<int>(s.Slice(2 * lanes)) + Vector.AsVectorInt32(c) * w).CopyTo(s.Slice(2 * lanes));
                (new Vector<int>(s.Slice(3 * lanes)) + Vector.AsVectorInt32(d) * w).CopyTo(s.Slice(3 * lanes));
            }
        }
        for (; i < row.Length; i++)
            sums[i] += row[i] * weight;
    }

    private static byte Clip(int sum)
    {
        int v = sum >> PrecisionBits;
        return (byte)(v < 0 ? 0 : v > 255 ? 255 : v);
    }

    /// <summary>The filter of a 1-D resize: for each output pixel, the first source pixel, how many, and their weights.</summary>
    private sealed class Taps
    {
        public required int[] Start { get; init; }
        public required int[] Count { get; init; }
        public required int[] Weights { get; init; }
        public required int Stride { get; init; }

        /// <summary>Source range [<paramref name="from"/>, <paramref name="to"/>) of an axis of <paramref name="length"/>
        /// pixels onto <paramref name="size"/> output pixels; the window stays inside the pixels the range touches.</summary>
        public static Taps For(double from, double to, int length, int size)
        {
            double scale = (to - from) / size;
            double filterScale = Math.Max(scale, 1.0);
            double support = filterScale; // the triangle's radius 1, stretched when shrinking
            int lo = (int)Math.Floor(from + 1e-9);
            int hi = Math.Min(length, (int)Math.Ceiling(to - 1e-9));
            int stride = (int)Math.Ceiling(support) * 2 + 1;
            var start = new int[size];
            var count = new int[size];
            var weights = new int[size * stride];
            Span<double> k = stackalloc double[stride];
            for (int o = 0; o < size; o++)
            {
                double center = from + (o + 0.5) * scale;
                int first = Math.Max((int)Math.Floor(center - support + 0.5), lo);
                int end = Math.Min((int)Math.Floor(center + support + 0.5), hi);
                int n = Math.Min(end - first, stride);
                double total = 0;
                for (int t = 0; t < n; t++)
                {
                    double distance = Math.Abs((first + t - center + 0.5) / filterScale);
                    k[t] = distance < 1 ? 1 - distance : 0;
                    total += k[t];
                }
                for (int t = 0; t < n; t++)
                {
                    double normalised = total != 0 ? k[t] / total : 0;
                    weights[o * stride + t] = (int)Math.Truncate(normalised * (1 << PrecisionBits) + (normalised < 0 ? -0.5 : 0.5));
                }
                start[o] = first;
                count[o] = Math.Max(n, 0);
            }
            return new Taps { Start = start, Count = count, Weights = weights, Stride = stride };
        }
    }
}
