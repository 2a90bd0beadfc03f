using MoCoV3.IO;
using System.Globalization;
using SkiaSharp;

namespace MoCoV3.Eval.Probe;

/// <summary>
/// Draws a confusion matrix as a PNG with SkiaSharp: true class per row, predicted class per column, each cell shaded by
/// the fraction of its row (white 0 .. dark blue 1) and labelled with its count. Class names label the rows, class
/// indices the columns.
/// </summary>
public static class ConfusionMatrixImage
{
    private const int Cell = 44;
    private const int Margin = 12;

    /// <summary>Writes <paramref name="counts"/> (rows: true class, columns: predicted class) to <paramref name="path"/>.</summary>
    public static void Write(string path, IReadOnlyList<IReadOnlyList<double>> counts, IReadOnlyList<string> classNames, string title)
    {
        int k = classNames.Count;
        if (counts.Count != k || counts.Any(row => row.Count != k))
            throw new ArgumentException($"expected a {k}x{k} confusion matrix");

        using var typeface = Typeface();
        using var font = new SKFont(typeface, 12);
        using var titleFont = new SKFont(typeface, 14);
        using var ink = new SKPaint { Color = SKColors.Black, IsAntialias = true };
        using var light = new SKPaint { Color = SKColors.White, IsAntialias = true };
        using var grid = new SKPaint { Color = new SKColor(200, 200, 200), Style = SKPaintStyle.Stroke, StrokeWidth = 1 };

        var (left, top) = Origin(classNames, font);
        int width = left + k * Cell + Margin, height = top + k * Cell + Margin + Cell / 2;

        using var bitmap = new SKBitmap(new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Opaque));
        using (var canvas = new SKCanvas(bitmap))
        {
            canvas.Clear(SKColors.White);
            canvas.DrawText(title, Margin, Margin + 14, SKTextAlign.Left, titleFont, ink);
            canvas.DrawText("predicted class", left + k * Cell / 2f, top - Cell / 2f - 6, SKTextAlign.Center, font, ink);
            for (int c = 0; c < k; c++)
            {
                canvas.DrawText(c.ToString(CultureInfo.InvariantCulture), left + (c + 0.5f) * Cell, top - 6, SKTextAlign.Center, font, ink);
                canvas.DrawText(RowLabel(c, classNames[c]), left - Margin, top + (c + 0.5f) * Cell + 4, SKTextAlign.Right, font, ink);
            }
            for (int r = 0; r < k; r++)
            {
                double rowTotal = counts[r].Sum();
                for (int c = 0; c < k; c++)
                {
                    double fraction = rowTotal > 0 ? counts[r][c] / rowTotal : 0;
                    var rect = SKRect.Create(left + c * Cell, top + r * Cell, Cell, Cell);
                    using var fill = new SKPaint { Color = Shade(fraction) };
                    canvas.DrawRect(rect, fill);
                    canvas.DrawRect(rect, grid);
                    canvas.DrawText(counts[r][c].ToString("0", CultureInfo.InvariantCulture), rect.MidX, rect.MidY + 4, SKTextAlign.Center,
                                    font, fraction > 0.5 ? light : ink);
                }
            }
            canvas.DrawText("rows: true class", Margin, height - Margin, SKTextAlign.Left, font, ink);
        }

        using var image = SKImage.FromBitmap(bitmap);
        using var png = image.Encode(SKEncodedImageFormat.Png, 100);
        DurableFile.Write(path, png.SaveTo);
    }

    /// <summary>The cell colour of a row fraction: white at 0, (8, 48, 107) at 1.</summary>
    public static SKColor Shade(double fraction)
    {
        double t = Math.Clamp(fraction, 0, 1);
        static byte Mix(int from, int to, double t) => (byte)Math.Round(from + (to - from) * t);
        return new SKColor(Mix(255, 8, t), Mix(255, 48, t), Mix(255, 107, t));
    }

    /// <summary>The position of the centre of cell (<paramref name="row"/>, <paramref name="column"/>) in an image drawn for
    /// <paramref name="classNames"/>, for checks.</summary>
    public static SKPointI CellCenter(IReadOnlyList<string> classNames, int row, int column)
    {
        using var typeface = Typeface();
        using var font = new SKFont(typeface, 12);
        var (left, top) = Origin(classNames, font);
        return new SKPointI(left + column * Cell + 4, top + row * Cell + 4);
    }

    /// <summary>The top-left corner of the grid: right of the widest row label, below the title and column indices.</summary>
    private static (int Left, int Top) Origin(IReadOnlyList<string> classNames, SKFont font)
    {
        float labelWidth = classNames.Select((n, c) => font.MeasureText(RowLabel(c, n))).DefaultIfEmpty(0).Max() + 2 * Margin;
        return ((int)MathF.Ceiling(labelWidth), 3 * Cell / 2 + Margin);
    }

    /// <summary>
    /// A sans-serif face: the font manager's, else the first of the usual TrueType files found under /usr/share/fonts
    /// (SkiaSharp's Linux native build without fontconfig may find no fonts by family name), else Skia's default.
    /// </summary>
    private static SKTypeface Typeface()
    {
        if (SKFontManager.Default.MatchFamily("DejaVu Sans") is { } byName) return byName;
        string[] preferred = ["DejaVuSans.ttf", "LiberationSans-Regular.ttf", "NotoSans-Regular.ttf", "FreeSans.ttf"];
        const string fonts = "/usr/share/fonts";
        if (Directory.Exists(fonts))
        {
            var files = Directory.EnumerateFiles(fonts, "*.ttf", SearchOption.AllDirectories).ToList();
            foreach (string name in preferred)
                if (files.FirstOrDefault(f => Path.GetFileName(f) == name) is { } file && SKTypeface.FromFile(file) is { } face)
                    return face;
        }
        return SKTypeface.Default;
    }

    private static string RowLabel(int c, string name) => $"{c} {name}";
}
