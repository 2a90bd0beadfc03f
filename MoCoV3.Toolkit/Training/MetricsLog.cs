using System.Globalization;
using CsvHelper;

namespace MoCoV3.Training;

/// <summary>
/// <c>metrics.csv</c>: one row per logged step, flushed as written. On resume the rows after the resumed step
/// (logged after the last checkpoint by the interrupted run) are dropped first, so the file reads as one run.
/// <c>knn_top1</c> is empty in rows where it was not measured; files written before it existed read with null there.
/// </summary>
public sealed class MetricsLog : IDisposable
{
    public static readonly string[] Columns = ["step", "epoch", "loss", "lr", "momentum", "grad_norm", "img_per_s", "elapsed_s", "knn_top1"];

    private readonly CsvWriter csv;

    public MetricsLog(string path, long resumeStep)
    {
        var kept = resumeStep > 0 && File.Exists(path) ? Read(path).Where(r => r.Step <= resumeStep).ToList() : [];
        csv = CsvWriter.Create(new StreamWriter(path, append: false), new CsvWriterOptions(), leaveOpen: false);
        csv.WriteHeader(Columns);
        foreach (var row in kept) Write(row);
    }

    public void Write(MetricsRow row)
    {
        static string F(double v) => v.ToString("R", CultureInfo.InvariantCulture);
        csv.WriteRecord([row.Step.ToString(CultureInfo.InvariantCulture), F(row.Epoch), F(row.Loss), F(row.Lr),
            F(row.Momentum), F(row.GradNorm), F(row.ImgPerS), F(row.ElapsedS), row.KnnTop1 is double knn ? F(knn) : ""]);
        csv.Flush();
    }

    public static List<MetricsRow> Read(string path)
    {
        using var csv = CsvReader.Create(new StreamReader(path), new CsvReaderOptions { HasHeader = true }, leaveOpen: false);
        var rows = new List<MetricsRow>();
        csv.ReadHeader();
        bool hasKnn = csv.TryGetFieldIndex("knn_top1", out int knnColumn);
        while (csv.Read())
        {
            string knn = hasKnn && knnColumn < csv.FieldCount ? csv.GetString(knnColumn) : "";
            double D(string column) => double.Parse(csv.GetString(column), CultureInfo.InvariantCulture);
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
                KnnTop1 = knn.Length == 0 ? null : double.Parse(knn, CultureInfo.InvariantCulture),
            });
        }
        return rows;
    }

    public void Dispose() => csv.Dispose();
}
