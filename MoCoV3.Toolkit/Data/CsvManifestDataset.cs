using MoCoV3.Inference;
using CsvHelper;

namespace MoCoV3.Data;

/// <summary>
/// Images listed in a CSV file with a header that has (at least) the columns <c>path</c> and <c>label</c>. Paths are
/// relative to the CSV file's folder unless absolute; labels are class names, and the classes are the distinct labels
/// in ordinal order. Every listed file must exist when the dataset is opened. Images are decoded only when read, like
/// <see cref="ImageFolderDataset"/>.
/// </summary>
public sealed class CsvManifestDataset : ImageFileDataset
{
    private const int MaxRecordBytes = 1 << 20;


    /// <param name="csvPath">The CSV file.</param>
    /// <param name="size">Height and width of the images once read.</param>
    /// <param name="channels">3 for RGB, 1 for luminance.</param>
    /// <exception cref="FileNotFoundException">The CSV file does not exist.</exception>
    /// <exception cref="DataFormatException">
    /// Missing header columns, a row without a path or label, a listed file that does not exist, malformed CSV, no rows;
    /// the message names the CSV file and the line.
    /// </exception>
    public CsvManifestDataset(string csvPath, int size, int channels) : base(csvPath, List(csvPath, size, channels), size, channels)
    {
    }

    private static ImageFileList List(string csvPath, int size, int channels)
    {
        ArgumentException.ThrowIfNullOrEmpty(csvPath);
        ImageDecoder.ValidateShape(size, channels);
        if (!File.Exists(csvPath))
            throw new FileNotFoundException($"CSV manifest not found: {csvPath}", csvPath);

        string folder = Path.GetDirectoryName(Path.GetFullPath(csvPath))!;
        var paths = new List<string>();
        var labelNames = new List<string>();
        var options = new CsvReaderOptions
        {
            TrackLineNumbers = true,
            MalformedData = CsvMalformedDataHandling.Throw,
            TrimWhitespace = true,
            // A path,label row is short; do not let an unclosed quote buffer the rest of a large file.
            MaxRecordSize = MaxRecordBytes,
        };
        long line = 1;
        try
        {
            using CsvReader csv = CsvReader.FromFile(csvPath, options);
            IReadOnlyList<string> headers = csv.Headers;
            if (headers.Count == 0)
                throw DataFormatException.AtLine(csvPath, 1, "expected a header with the columns path,label, found an empty file");
            if (!csv.TryGetFieldIndex("path", out int pathColumn) || !csv.TryGetFieldIndex("label", out int labelColumn))
                throw DataFormatException.AtLine(csvPath, 1, "expected a header with the columns path,label, found "
                    + string.Join(',', headers));

            while (csv.Read())
            {
                line = csv.LineNumber;
                if (csv.FieldCount <= Math.Max(pathColumn, labelColumn))
                    throw DataFormatException.AtLine(csvPath, line, $"expected {headers.Count} columns ({string.Join(',', headers)}), "
                        + $"found {csv.FieldCount}");
                string path = csv.GetString(pathColumn);
                string label = csv.GetString(labelColumn);
                if (path.Length == 0)
                    throw DataFormatException.AtLine(csvPath, line, "expected an image path, found an empty path");
                if (label.Length == 0)
                    throw DataFormatException.AtLine(csvPath, line, "expected a label (class name), found an empty label");
                if (path.Contains('\0'))
                    throw DataFormatException.AtLine(csvPath, line, "expected an image path, found a path with a NUL character");
                string fullPath = Path.GetFullPath(Path.IsPathFullyQualified(path) ? path : Path.Combine(folder, path));
                if (!File.Exists(fullPath))
                    throw DataFormatException.AtLine(csvPath, line, $"expected an image file, found no file at {fullPath}");
                paths.Add(fullPath);
                labelNames.Add(label);
            }
        }
        catch (CsvFormatException e)
        {
            long at = e.LineNumber > 0 ? e.LineNumber : line;
            throw DataFormatException.AtLine(csvPath, at, $"expected well-formed CSV, found: {e.Message}", e);
        }
        if (paths.Count == 0)
            throw DataFormatException.AtLine(csvPath, 2, "expected at least one row after the header, found none");

        string[] classNames = labelNames.Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToArray();
        var classIndex = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < classNames.Length; i++)
            classIndex[classNames[i]] = i;

        return new ImageFileList(paths.ToArray(), labelNames.Select(name => classIndex[name]).ToArray(), classNames);
    }
}
