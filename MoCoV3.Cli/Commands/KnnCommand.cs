using System.CommandLine;
using MoCoV3.Data;
using MoCoV3.Eval.Embed;
using MoCoV3.Eval.Knn;
using MoCoV3.Evaluation;
using MoCoV3.Runtime;

namespace MoCoV3.Cli.Commands;

/// <summary><c>mocov3 knn</c>: kNN accuracy of an exported encoder (train split = bank, test split = queries).</summary>
internal static class KnnCommand
{
    public static Command Create()
    {
        var encoder = new Option<string>("--encoder") { Description = "Exported encoder (mocov3 export)", Required = true };
        var data = new Option<string?>("--data") { Description = "Dataset folder or CSV manifest (default: /usr/share/datasets/fashion-mnist)" };
        var dataset = new Option<string>("--dataset") { Description = "auto | fashion-mnist | imagefolder | csv", DefaultValueFactory = _ => DatasetFactory.AutoKind };
        var test = new Option<string?>("--test") { Description = "Query data (default: the test split of --data; without one, 1/5 of it is held out)" };
        var k = new Option<int>("--k") { Description = "Neighbours that vote", DefaultValueFactory = _ => KnnClassifier.DefaultK };
        var temperature = new Option<double>("--temperature") { Description = "T of the vote weights exp(cos/T)", DefaultValueFactory = _ => KnnClassifier.DefaultTemperature };
        var limit = new Option<int?>("--limit") { Description = "At most N images of each split, spread evenly over it" };
        var batch = new Option<int>("--batch") { Description = "Images per ONNX Runtime call", DefaultValueFactory = _ => OnnxEmbedder.DefaultBatch };
        var device = new Option<string>("--device") { Description = "cpu | cuda | cuda:N (CUDA needs Microsoft.ML.OnnxRuntime.Gpu)", DefaultValueFactory = _ => "cpu" };

        var command = new Command("knn", "kNN accuracy of an exported encoder: cosine similarity, k neighbours weighted by exp(cos/T)")
        {
            encoder, data, dataset, test, k, temperature, limit, batch, device,
        };
        command.SetAction(r => CliErrors.Run(() =>
        {
            TorchRuntime.Initialize("cpu");
            var options = new KnnOptions
            {
                Encoder = r.GetValue(encoder)!, Data = new() { Path = r.GetValue(data), Kind = r.GetValue(dataset)!, Limit = r.GetValue(limit) },
                Test = r.GetValue(test), K = r.GetValue(k), Temperature = r.GetValue(temperature), Batch = r.GetValue(batch),
                Device = r.GetValue(device)!,
            };
            var report = CliProgress.Run(progress => KnnEvaluator.Run(options, Console.WriteLine,
                (split, done, total) => progress.Report(new CliProgress.Update($"embed {split}", done, total))));
            var result = report.Result;
            Console.WriteLine(FormattableString.Invariant(
                $"top1={result.Top1:F4} top5={result.Top5:F4} k={result.K} T={result.Temperature} train={result.Train} test={result.Test} embed_s={report.EmbedSeconds:F1} knn_s={report.KnnSeconds:F2}"));
            return 0;
        }));
        return command;
    }
}
