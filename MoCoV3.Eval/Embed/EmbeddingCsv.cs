using MoCoV3.IO;
using System.Globalization;
using CsvHelper;
using MoCoV3.Data;

namespace MoCoV3.Eval.Embed;

/// <summary>
/// Embeddings as CSV: a header <c>path,label,e0,…,e{D-1}</c> (no <c>label</c> column for unlabelled images), then one
/// row per image with its file path, its class name and the embedding's values (shortest round-trip text).
/// </summary>
public static class EmbeddingCsv
{
    public static void Write(string path, ImageFileDataset images, Embeddings embeddings)
    {
        ArgumentNullException.ThrowIfNull(images);
        ArgumentNullException.ThrowIfNull(embeddings);
        if (embeddings.Count != images.Count)
            throw new ArgumentException($"{embeddings.Count} embeddings for the {images.Count} images of {images.Source}");
        bool labelled = images.ClassNames.Count > 0;
        DurableFile.WriteText(path, writer =>
        {
            using var csv = CsvWriter.Create(writer, new CsvWriterOptions(), leaveOpen: true);
            var header = new List<string> { "path" };
            if (labelled) header.Add("label");
            header.AddRange(Enumerable.Range(0, embeddings.Dim).Select(i => "e" + i.ToString(CultureInfo.InvariantCulture)));
            csv.WriteHeader(header.ToArray());
            for (int i = 0; i < embeddings.Count; i++)
            {
                csv.WriteField(images.Paths[i]);
                if (labelled) csv.WriteField(images.ClassNames[(int)embeddings.Labels[i]]);
                foreach (float v in embeddings.Row(i)) csv.WriteField(v);
                csv.EndRecord();
            }
            csv.Flush();
        });
    }

    /// <summary>Reads a file written by <see cref="Write"/>: the paths, the labels (null when unlabelled) and the vectors.</summary>
    public static (List<string> Paths, List<string>? Labels, List<float[]> Vectors) Read(string path)
    {
        using var csv = CsvReader.FromFile(path, new CsvReaderOptions { HasHeader = true, TrackLineNumbers = true });
        var headers = csv.Headers;
        if (headers.Count == 0 || headers[0] != "path")
            throw new InvalidDataException($"{path}: expected a header path,[label,]e0,…, found {string.Join(',', headers)}");
        bool labelled = headers.Count > 1 && headers[1] == "label";
        int first = labelled ? 2 : 1;
        var paths = new List<string>();
        var labels = labelled ? new List<string>() : null;
        var vectors = new List<float[]>();
        while (csv.Read())
        {
            if (csv.FieldCount != headers.Count)
                throw new InvalidDataException($"{path}: line {csv.LineNumber}: expected {headers.Count} fields, found {csv.FieldCount}");
            paths.Add(csv.GetString(0));
            labels?.Add(csv.GetString(1));
            var v = new float[headers.Count - first];
            for (int j = 0; j < v.Length; j++) v[j] = float.Parse(csv.GetString(first + j), CultureInfo.InvariantCulture);
            vectors.Add(v);
        }
        return (paths, labels, vectors);
    }
}
