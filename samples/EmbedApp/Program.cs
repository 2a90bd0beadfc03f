// EmbedApp: embed every image of a folder with an exported MoCo v3 encoder, then list the 5 images most similar to a
// query image (cosine similarity of the embeddings).
//   dotnet run -- encoder.onnx IMAGE_FOLDER [QUERY_IMAGE]
using System.Diagnostics;
using MoCoV3.Inference;

if (args.Length is < 2 or > 3)
{
    Console.Error.WriteLine("usage: EmbedApp ENCODER.onnx IMAGE_FOLDER [QUERY_IMAGE]");
    return 1;
}
string[] extensions = [".jpg", ".jpeg", ".png", ".webp"];
var images = Directory.EnumerateFiles(args[1], "*", SearchOption.AllDirectories)
    .Where(f => extensions.Contains(Path.GetExtension(f).ToLowerInvariant()))
    .Order(StringComparer.Ordinal)
    .ToList();
if (images.Count < 2)
{
    Console.Error.WriteLine($"error: {args[1]}: expected at least 2 images, found {images.Count}");
    return 2;
}

try
{
    using var encoder = ImageEncoder.Load(args[0]);
    Console.WriteLine($"{args[0]}: {encoder.Metadata.PresetName ?? "encoder"}, {encoder.Channels}x{encoder.InputSize}x{encoder.InputSize} in, " +
                      $"{encoder.Dimension}-d embedding ({encoder.Metadata.Embedding})");

    var clock = Stopwatch.StartNew();
    var vectors = encoder.Embed(images).Select(Normalize).ToList(); // batched, decoded in parallel
    Console.WriteLine($"embedded {images.Count} images in {clock.Elapsed.TotalSeconds:F1} s ({images.Count / clock.Elapsed.TotalSeconds:F0} images/s)");

    string query = args.Length == 3 ? args[2] : images[0];
    float[] q = Normalize(encoder.Embed(query));
    Console.WriteLine($"most similar to {query}:");
    var nearest = images.Select((path, i) => (Path: path, Cosine: Dot(q, vectors[i])))
        .Where(n => Path.GetFullPath(n.Path) != Path.GetFullPath(query))
        .OrderByDescending(n => n.Cosine)
        .Take(5);
    int rank = 1;
    foreach (var (path, cosine) in nearest) Console.WriteLine($"{rank++}\t{cosine:F4}\t{path}");
    return 0;
}
catch (Exception e) when (e is IOException or InvalidDataException or MoCoV3.DataFormatException or InvalidOperationException)
{
    Console.Error.WriteLine($"error: {e.Message}");
    return 2;
}

static float[] Normalize(float[] v)
{
    float norm = MathF.Sqrt(Dot(v, v));
    return v.Select(x => x / Math.Max(norm, 1e-12f)).ToArray();
}

static float Dot(float[] a, float[] b)
{
    float sum = 0;
    for (int i = 0; i < a.Length; i++) sum += a[i] * b[i];
    return sum;
}
