using MoCoV3.IO;
using System.Globalization;
using CsvHelper;

namespace MoCoV3.Eval.Probe;

/// <summary>
/// <c>report.csv</c>: one row per number, columns <c>metric, class, l2, images, accuracy</c>. Rows <c>top1</c> and
/// <c>top5</c> are the test split overall (with the chosen L2), <c>class</c> rows the accuracy of each class's test
/// images, and <c>holdout</c> rows the held-out accuracy of each L2 weight of the sweep.
/// </summary>
public static class ProbeReport
{
    public static readonly string[] Columns = ["metric", "class", "l2", "images", "accuracy"];

    /// <summary>Writes the report of <paramref name="result"/> to <paramref name="path"/>.</summary>
    public static void Write(string path, ProbeResult result, int holdoutCount)
    {
        static string F(double v) => v.ToString("R", CultureInfo.InvariantCulture);
        static string L2(float v) => v.ToString("R", CultureInfo.InvariantCulture);
        static string I(double v) => v.ToString("0", CultureInfo.InvariantCulture);
        DurableFile.WriteText(path, writer =>
        {
            using var csv = CsvWriter.Create(writer, new CsvWriterOptions(), leaveOpen: true);
            csv.WriteHeader(Columns);
            string best = L2(result.BestL2);
            csv.WriteRecord(["top1", "", best, I(result.TestCount), F(result.Top1)]);
            csv.WriteRecord(["top5", "", best, I(result.TestCount), F(result.Top5)]);
            for (int c = 0; c < result.ClassNames.Count; c++)
                csv.WriteRecord(["class", result.ClassNames[c], best, I(result.ConfusionMatrix[c].Sum()), F(result.PerClassAccuracy[c])]);
            foreach (var (l2, accuracy) in result.Sweep)
                csv.WriteRecord(["holdout", "", L2(l2), I(holdoutCount), F(accuracy)]);
            csv.Flush();
        });
    }

    /// <summary>Reads back the rows of a report as (metric, class, l2, images, accuracy).</summary>
    public static List<(string Metric, string Class, double L2, int Images, double Accuracy)> Read(string path)
    {
        using var csv = CsvReader.Create(new StreamReader(path), new CsvReaderOptions { HasHeader = true }, leaveOpen: false);
        var rows = new List<(string, string, double, int, double)>();
        while (csv.Read())
        {
            double D(string column) => double.Parse(csv.GetString(column), CultureInfo.InvariantCulture);
            rows.Add((csv.GetString("metric"), csv.GetString("class"), D("l2"),
                      int.Parse(csv.GetString("images"), CultureInfo.InvariantCulture), D("accuracy")));
        }
        return rows;
    }
}
