using MoCoV3.IO;
using System.Globalization;
using CsvHelper;

namespace MoCoV3.Training;

/// <summary>
/// <c>metrics.csv</c>: one row per logged step, flushed as written. On resume (and on a rollback) the rows after the step
/// the run continues from (logged after its checkpoint by the interrupted run) are dropped first, so the file reads as
/// one run; that rewrite goes through <see cref="DurableFile"/>, so a kill during it loses nothing. Columns added over
/// time (<c>knn_top1</c>, then <c>grad_norm_first</c>, <c>grad_norm_last</c>, <c>warnings</c>) are at the end; files
/// written before them read with null / empty there. A last row cut short by a killed run is left out.
/// </summary>
public sealed class MetricsLog : IDisposable
{
    public static readonly string[] Columns =
        ["step", "epoch", "loss", "lr", "momentum", "grad_norm", "img_per_s", "elapsed_s", "knn_top1", "grad_norm_first", "grad_norm_last", "warnings"];

    private readonly string path;
    private CsvWriter csv;

    public MetricsLog(string path, long resumeStep)
    {
        this.path = path;
        csv = Open(resumeStep);
    }

    /// <summary>The rows of earlier runs kept by the constructor or the last <see cref="RewindTo"/> (steps up to the resumed step).</summary>
    public IReadOnlyList<MetricsRow> Kept { get; private set; } = [];

    /// <summary>Drops the rows after <paramref name="step"/> (a rollback to the checkpoint of that step); later rows append.</summary>
    public void RewindTo(long step)
    {
        csv.Dispose();
        csv = Open(step);
    }

    private CsvWriter Open(long keepUpTo)
    {
        Kept = keepUpTo > 0 && File.Exists(path) ? Read(path).Where(r => r.Step <= keepUpTo).ToList() : [];
        DurableFile.Write(path, stream =>
        {
            using var writer = CsvWriter.Create(new StreamWriter(stream, leaveOpen: true), new CsvWriterOptions(), leaveOpen: false);
            writer.WriteHeader(Columns);
            foreach (var row in Kept) WriteRecord(writer, row);
        });
        return CsvWriter.Create(new StreamWriter(path, append: true), new CsvWriterOptions(), leaveOpen: false);
    }

    public void Write(MetricsRow row)
    {
        WriteRecord(csv, row);
        csv.Flush();
    }

    private static void WriteRecord(CsvWriter writer, MetricsRow row)
    {
        static string F(double v) => v.ToString("R", CultureInfo.InvariantCulture);
        static string N(double? v) => v is double d ? F(d) : "";
        writer.WriteRecord([row.Step.ToString(CultureInfo.InvariantCulture), F(row.Epoch), F(row.Loss), F(row.Lr),
            F(row.Momentum), F(row.GradNorm), F(row.ImgPerS), F(row.ElapsedS), N(row.KnnTop1), N(row.GradNormFirst),
            N(row.GradNormLast), row.Warnings]);
    }

    public static List<MetricsRow> Read(string path)
    {
        using var csv = CsvReader.Create(new StreamReader(path), new CsvReaderOptions { HasHeader = true }, leaveOpen: false);
        var rows = new List<MetricsRow>();
        csv.ReadHeader();
        string Optional(string column) =>
            csv.TryGetFieldIndex(column, out int index) && index < csv.FieldCount ? csv.GetString(index) : "";
        double? Nullable(string column) => Optional(column) is { Length: > 0 } text ? double.Parse(text, CultureInfo.InvariantCulture) : null;
        double D(string column) => double.Parse(csv.GetString(column), CultureInfo.InvariantCulture);

        Exception? broken = null;
        while (csv.Read())
        {
            // A row that does not parse is only acceptable as the last one (a run killed while writing it).
            if (broken is not null) throw broken;
            try
            {
                rows.Add(new MetricsRow
                {
                    Step = long.Parse(csv.GetString("step"), CultureInfo.InvariantCulture),
                    Epoch = D("epoch"),
                    Loss = D("loss"),
                    Lr = D("lr"),
                    Momentum = D("momentum"),
                    GradNorm = D("grad_norm"),
                    ImgPerS = D("img_per_s"),
                    ElapsedS = D("elapsed_s"),
                    KnnTop1 = Nullable("knn_top1"),
                    GradNormFirst = Nullable("grad_norm_first"),
                    GradNormLast = Nullable("grad_norm_last"),
                    Warnings = Optional("warnings"),
                });
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                broken = new InvalidDataException($"{path}: row {rows.Count + 1} does not parse: {e.Message}", e);
            }
        }
        return rows;
    }

    public void Dispose() => csv.Dispose();
}
