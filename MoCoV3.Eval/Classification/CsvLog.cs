using System.Globalization;
using CsvHelper;

namespace MoCoV3.Eval.Classification;

/// <summary>A CSV file of numeric rows under fixed columns, flushed row by row (a run's <c>metrics.csv</c>).</summary>
public sealed class CsvLog : IDisposable
{
    private readonly CsvWriter csv;
    private readonly string[] columns;

    public CsvLog(string path, params string[] columns)
    {
        this.columns = columns;
        csv = CsvWriter.Create(new StreamWriter(path, append: false), new CsvWriterOptions(), leaveOpen: false);
        csv.WriteHeader(columns);
    }

    public void Write(params double[] values)
    {
        if (values.Length != columns.Length)
            throw new ArgumentException($"{values.Length} values for {columns.Length} columns ({string.Join(",", columns)})");
        csv.WriteRecord(values.Select(v => v.ToString("R", CultureInfo.InvariantCulture)).ToArray());
        csv.Flush();
    }

    /// <summary>Reads a column of a file written by this class.</summary>
    public static List<double> ReadColumn(string path, string column)
    {
        using var csv = CsvReader.Create(new StreamReader(path), new CsvReaderOptions { HasHeader = true }, leaveOpen: false);
        var values = new List<double>();
        while (csv.Read()) values.Add(double.Parse(csv.GetString(column), CultureInfo.InvariantCulture));
        return values;
    }

    public void Dispose() => csv.Dispose();
}
