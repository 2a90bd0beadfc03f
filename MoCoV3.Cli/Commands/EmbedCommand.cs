using System.CommandLine;
using MoCoV3.Eval.Embed;

namespace MoCoV3.Cli.Commands;

/// <summary><c>mocov3 embed</c>: embeddings of images with an exported encoder, written as CSV.</summary>
internal static class EmbedCommand
{
    public static Command Create()
    {
        var encoder = new Option<string>("--encoder") { Description = "Exported encoder (mocov3 export)", Required = true };
        var input = new Option<string>("--input") { Description = "Image folder (class sub-folders, or images directly in it) or CSV manifest (path,label)", Required = true };
        var output = new Option<string>("--out") { Description = "CSV to write: path,[label,]e0..e{D-1}", DefaultValueFactory = _ => "embeddings.csv" };
        var device = new Option<string>("--device") { Description = "cpu | cuda | cuda:N (CUDA needs Microsoft.ML.OnnxRuntime.Gpu)", DefaultValueFactory = _ => "cpu" };
        var batch = new Option<int>("--batch") { Description = "Images per ONNX Runtime call", DefaultValueFactory = _ => OnnxEmbedder.DefaultBatch };

        var command = new Command("embed", "Embed images with an exported encoder and write them as CSV") { encoder, input, output, device, batch };
        command.SetAction(r => CliErrors.Run(() =>
        {
            string outPath = r.GetValue(output)!;
            var clock = System.Diagnostics.Stopwatch.StartNew();
            using var embedder = new OnnxEmbedder(r.GetValue(encoder)!, r.GetValue(device)!);
            var images = EmbeddingInput.Open(r.GetValue(input)!, embedder.ImageSize, embedder.Channels);
            var embeddings = CliProgress.Run(progress => embedder.Embed(images, batch: r.GetValue(batch),
                progress: done => progress.Report(new CliProgress.Update("embed", done, images.Count))));
            EmbeddingCsv.Write(outPath, images, embeddings);
            Console.WriteLine($"wrote {outPath}: {embeddings.Count} embeddings of {embeddings.Dim} values from {images.Source} " +
                              $"({(images.ClassNames.Count > 0 ? $"{images.ClassNames.Count} classes" : "unlabelled")}) in {clock.Elapsed.TotalSeconds:F1}s");
            return 0;
        }));
        return command;
    }
}
