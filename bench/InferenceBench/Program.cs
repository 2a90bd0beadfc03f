// InferenceBench: what an app pays to embed images with an exported encoder, on this machine.
//   InferenceBench (--encoder MODEL.onnx | --preset NAME) [--images DIR] [--count N] [--threads T] [--single N] [--rows N]
// Without --encoder, the preset is built with seeded random weights and exported (speed does not depend on the weights).
// Without --images, --count images are written: Fashion-MNIST test images as PNG for 28-px 1-channel models, else
// photo-like 500x375 JPEGs (quality 90). Prints one line per measurement.
using System.Diagnostics;
using System.Globalization;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms.Onnx;
using MoCoV3.Data;
using MoCoV3.Export;
using MoCoV3.Inference;
using MoCoV3.Inference.ML;
using MoCoV3.Models;
using MoCoV3.Runtime;
using SkiaSharp;

var options = Args(args);
int threads = int.Parse(options.GetValueOrDefault("threads", "2"), CultureInfo.InvariantCulture);
int count = int.Parse(options.GetValueOrDefault("count", "512"), CultureInfo.InvariantCulture);
int singles = int.Parse(options.GetValueOrDefault("single", "200"), CultureInfo.InvariantCulture);
int rows = int.Parse(options.GetValueOrDefault("rows", count.ToString(CultureInfo.InvariantCulture)), CultureInfo.InvariantCulture);
string work = Directory.CreateTempSubdirectory("mocov3-inference-bench-").FullName;

string model = options.TryGetValue("encoder", out var given) ? given : Export(options.GetValueOrDefault("preset", "vit-tiny-fmnist-quick"), work);
using var probe = ImageEncoder.Load(model);
var images = options.TryGetValue("images", out var folder)
    ? Directory.EnumerateFiles(folder, "*", SearchOption.AllDirectories).Where(ImageDecoder.HasImageExtension).Order(StringComparer.Ordinal).Take(count).ToList()
    : WriteImages(probe.InputSize, probe.Channels, count, work);
Console.WriteLine($"model {model}: {probe.Metadata.PresetName}, {probe.Channels}x{probe.InputSize}x{probe.InputSize} -> {probe.Dimension}; " +
                  $"{images.Count} images; {threads} threads; {Environment.ProcessorCount} cores");
probe.Dispose();

// 1. ImageEncoder: one image per call (decode + run), p50/p99 latency.
using (var encoder = ImageEncoder.Load(model, new ImageModelOptions { Threads = threads }))
{
    for (int i = 0; i < 10; i++) encoder.Embed(images[i % images.Count]);
    var times = new List<double>();
    for (int i = 0; i < singles; i++)
    {
        var clock = Stopwatch.StartNew();
        encoder.Embed(images[i % images.Count]);
        times.Add(clock.Elapsed.TotalMilliseconds);
    }
    times.Sort();
    Console.WriteLine(Line($"ImageEncoder.Embed(path), one image: p50 {Percentile(times, 0.50):F2} ms, p99 {Percentile(times, 0.99):F2} ms ({singles} calls)"));

    // 2. ImageEncoder: batched (decode in parallel, MaxBatch images per ORT call).
    foreach (int batch in new[] { 32, 64, 256 }.Where(b => b <= images.Count))
    {
        using var batched = ImageEncoder.Load(model, new ImageModelOptions { Threads = threads, MaxBatch = batch, DecodeThreads = threads });
        using var oneCall = ImageEncoder.Load(model, new ImageModelOptions { Threads = threads, MaxBatch = batch, DecodeThreads = threads, SideBySideBatches = false });
        oneCall.Embed(images.Take(batch));
        var one = Stopwatch.StartNew();
        oneCall.Embed(images);
        Console.WriteLine(Line($"ImageEncoder.Embed(paths), batch {batch}, one call of {threads} threads: {images.Count / one.Elapsed.TotalSeconds:F1} img/s"));
        batched.Embed(images.Take(batch));
        var clock = Stopwatch.StartNew();
        batched.Embed(images);
        Console.WriteLine(Line($"ImageEncoder.Embed(paths), batch {batch}, side by side ({threads} x 1 thread): {images.Count / clock.Elapsed.TotalSeconds:F1} img/s"));
    }
}

// Where the time goes: decoding alone (all cores), and ONNX Runtime alone on preprocessed images, by batch size.
using (var encoder = ImageEncoder.Load(model, new ImageModelOptions { Threads = threads }))
{
    var pre0 = encoder.Preprocessing;
    var inputs = new float[(long)images.Count * pre0.ValuesPerImage];
    var clock = Stopwatch.StartNew();
    Parallel.For(0, images.Count, new ParallelOptions { MaxDegreeOfParallelism = threads },
                 i => pre0.Load(images[i], inputs.AsSpan((int)((long)i * pre0.ValuesPerImage), pre0.ValuesPerImage)));
    Console.WriteLine(Line($"decode + preprocess only, {threads} threads: {images.Count / clock.Elapsed.TotalSeconds:F1} img/s"));
    foreach (int batch in new[] { 1, 8, 32, 64, 256 }.Where(b => b <= images.Count))
    {
        int n = Math.Min(images.Count, batch == 1 ? Math.Min(images.Count, 256) : images.Count) / batch * batch;
        encoder.EmbedPreprocessed(inputs.AsSpan(0, batch * pre0.ValuesPerImage), batch);
        clock.Restart();
        for (int start = 0; start < n; start += batch)
            encoder.EmbedPreprocessed(inputs.AsSpan(start * pre0.ValuesPerImage, batch * pre0.ValuesPerImage), batch);
        Console.WriteLine(Line($"ONNX Runtime only, batch {batch}: {n / clock.Elapsed.TotalSeconds:F1} img/s"));
    }
}

// The same cores used as concurrent callers of one session with one intra-op thread each (no parallel-for inside ops).
using (var encoder = ImageEncoder.Load(model, new ImageModelOptions { Threads = 1 }))
{
    var pre1 = encoder.Preprocessing;
    var inputs = new float[(long)Math.Min(images.Count, 512) * pre1.ValuesPerImage];
    foreach (int batch in new[] { 1, 32, 64 }.Where(b => b <= inputs.Length / pre1.ValuesPerImage))
    {
        int n = inputs.Length / pre1.ValuesPerImage / batch * batch;
        encoder.EmbedPreprocessed(inputs.AsSpan(0, batch * pre1.ValuesPerImage), batch);
        var clock = Stopwatch.StartNew();
        Parallel.For(0, n / batch, new ParallelOptions { MaxDegreeOfParallelism = threads },
                     b => encoder.EmbedPreprocessed(inputs.AsSpan(b * batch * pre1.ValuesPerImage, batch * pre1.ValuesPerImage), batch));
        Console.WriteLine(Line($"ONNX Runtime only, 1 intra-op thread x {threads} callers, batch {batch}: {n / clock.Elapsed.TotalSeconds:F1} img/s"));
    }
}

// 3. ML.NET: ApplyImageEncoder vs ApplyOnnxModel on the same encoder, threads and image paths.
var ml = new MLContext(0);
var pathRows = Enumerable.Range(0, rows).Select(i => new PathRow { ImagePath = images[i % images.Count] }).ToArray();
var data = ml.Data.LoadFromEnumerable(pathRows);
double ours = Throughput(ml.Transforms.ApplyImageEncoder(model, "Features", "ImagePath", new ImageModelOptions { Threads = threads }).Fit(data), data, "Features");
Console.WriteLine(Line($"ApplyImageEncoder (paths -> Features): {ours:F1} rows/s"));

// ApplyOnnxModel needs the pixels first: the same decoder as a mapping, then ML.NET's OnnxTransformer (one row per call).
var pre = ImageEncoder.Load(model).Preprocessing;
var decode = ml.Transforms.CustomMapping<PathRow, PixelRow>((input, output) =>
{
    output.Pixels = new float[pre.ValuesPerImage];
    pre.Load(input.ImagePath, output.Pixels);
}, contractName: null, outputSchemaDefinition: PixelSchema(pre.ValuesPerImage));
var onnx = ml.Transforms.ApplyOnnxModel(new OnnxOptions
{
    ModelFile = model,
    InputColumns = [OnnxMetadata.InputName],
    OutputColumns = [OnnxMetadata.EmbeddingName],
    ShapeDictionary = new Dictionary<string, int[]> { [OnnxMetadata.InputName] = [1, pre.Channels, pre.Size, pre.Size] },
    IntraOpNumThreads = threads,
    InterOpNumThreads = 1,
});
double theirs = Throughput(decode.Append(onnx).Fit(data), data, OnnxMetadata.EmbeddingName);
Console.WriteLine(Line($"decode + ApplyOnnxModel (paths -> embedding): {theirs:F1} rows/s"));
Console.WriteLine(Line($"ApplyImageEncoder / ApplyOnnxModel: {ours / theirs:F2}x"));

Directory.Delete(work, recursive: true);
return 0;

static double Throughput(ITransformer transformer, IDataView data, string column)
{
    // one warm-up pass over the first rows, then the timed pass over all of them
    var view = transformer.Transform(data);
    var col = view.Schema[column];
    double Pass(int limit)
    {
        var clock = Stopwatch.StartNew();
        int n = 0;
        using var cursor = view.GetRowCursor([col]);
        var getter = cursor.GetGetter<VBuffer<float>>(col);
        VBuffer<float> value = default;
        while (n < limit && cursor.MoveNext())
        {
            getter(ref value);
            n++;
        }
        return n / clock.Elapsed.TotalSeconds;
    }
    Pass(64);
    return Pass(int.MaxValue);
}

static SchemaDefinition PixelSchema(int length)
{
    var schema = SchemaDefinition.Create(typeof(PixelRow));
    schema[OnnxMetadata.InputName].ColumnType = new VectorDataViewType(NumberDataViewType.Single, length);
    return schema;
}

static double Percentile(List<double> sorted, double q) => sorted[Math.Min(sorted.Count - 1, (int)Math.Ceiling(q * sorted.Count) - 1)];

static string Line(string text) => text;

static string Export(string presetName, string work)
{
    TorchRuntime.Initialize("cpu");
    var preset = PresetCatalog.Get(presetName);
    TorchSharp.torch.manual_seed(0);
    using var backbone = BackboneFactory.Create(preset);
    backbone.eval();
    string path = Path.Combine(work, presetName + ".onnx");
    OnnxExporter.ExportToFile(backbone, preset, new ExportOptions(), path);
    return path;
}

static List<string> WriteImages(int size, int channels, int count, string work)
{
    var paths = new List<string>();
    if (size == 28 && channels == 1)
    {
        var test = FashionMnist.Load(null, train: false, limit: count);
        for (int i = 0; i < test.Count; i++)
        {
            using var bitmap = new SKBitmap(new SKImageInfo(28, 28, SKColorType.Gray8, SKAlphaType.Opaque));
            test.GetImage(i).CopyTo(bitmap.GetPixelSpan());
            paths.Add(Save(bitmap, Path.Combine(work, $"{i:D5}.png"), SKEncodedImageFormat.Png));
        }
        return paths;
    }
    var random = new Random(0);
    for (int i = 0; i < count; i++)
    {
        using var bitmap = new SKBitmap(new SKImageInfo(500, 375, SKColorType.Rgba8888, SKAlphaType.Premul));
        using (var canvas = new SKCanvas(bitmap))
        {
            SKColor C() => new((byte)random.Next(256), (byte)random.Next(256), (byte)random.Next(256));
            using var gradient = new SKPaint { Shader = SKShader.CreateLinearGradient(new SKPoint(0, 0), new SKPoint(500, 375), [C(), C()], SKShaderTileMode.Clamp) };
            canvas.DrawRect(new SKRect(0, 0, 500, 375), gradient);
            for (int s = 0; s < 8; s++)
            {
                using var paint = new SKPaint { Color = C().WithAlpha((byte)random.Next(100, 256)), IsAntialias = true };
                canvas.DrawCircle(random.Next(500), random.Next(375), random.Next(10, 120), paint);
            }
        }
        var pixels = bitmap.GetPixelSpan();
        for (int p = 0; p < pixels.Length; p++) if (p % 4 != 3) pixels[p] = (byte)Math.Clamp(pixels[p] + random.Next(-10, 11), 0, 255);
        paths.Add(Save(bitmap, Path.Combine(work, $"{i:D5}.jpg"), SKEncodedImageFormat.Jpeg));
    }
    return paths;
}

static string Save(SKBitmap bitmap, string path, SKEncodedImageFormat format)
{
    using var data = bitmap.Encode(format, 90);
    File.WriteAllBytes(path, data.ToArray());
    return path;
}

static Dictionary<string, string> Args(string[] args)
{
    var result = new Dictionary<string, string>(StringComparer.Ordinal);
    for (int i = 0; i + 1 < args.Length; i += 2)
    {
        if (!args[i].StartsWith("--", StringComparison.Ordinal)) throw new ArgumentException($"expected --name value, found '{args[i]}'");
        result[args[i][2..]] = args[i + 1];
    }
    return result;
}

internal sealed class PathRow
{
    public string ImagePath { get; set; } = "";
}

internal sealed class PixelRow
{
    [ColumnName("input")]
    public float[] Pixels { get; set; } = [];
}
