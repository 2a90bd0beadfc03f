using MoCoV3.Augment;
using MoCoV3.Data;
using SkiaSharp;

namespace MoCoV3.Tests.Data;

/// <summary>The loader cutting two views per image on its threads (ImageFolder / CSV pretraining).</summary>
[TestClass]
public sealed class HostViewsTests
{
    /// <summary>A folder of two classes of small photo-like JPEGs of different sizes.</summary>
    private static void WritePhotos(string root, int count)
    {
        for (int i = 0; i < count; i++)
        {
            string folder = Path.Combine(root, i % 2 == 0 ? "cats" : "dogs");
            Directory.CreateDirectory(folder);
            int width = 90 + 7 * i, height = 60 + 5 * i;
            using var bitmap = new SKBitmap(new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Premul));
            for (int y = 0; y < height; y++)
                for (int x = 0; x < width; x++)
                    bitmap.SetPixel(x, y, new SKColor((byte)(x * 255 / width), (byte)(y * 255 / height), (byte)((x * y + 40 * i) % 256)));
            using var data = bitmap.Encode(SKEncodedImageFormat.Jpeg, 90);
            File.WriteAllBytes(Path.Combine(folder, $"{i:D3}.jpg"), data.ToArray());
        }
    }

    [TestMethod]
    public void BatchesCarryTwoViewsThatDependOnlyOnSeedStepAndIndex()
    {
        using var dir = new TempDir();
        WritePhotos(dir.Path, 12);
        var dataset = new ImageFolderDataset(dir.Path, 32, 3);
        var cropping = new ViewCropping(new RandomResizedCrop(32, 0.08), Seed: 9);
        using var loader = new PrefetchLoader(dataset, 4, seed: 9, views: cropping);

        var epoch1 = loader.Epoch(1).ToList();
        try
        {
            Assert.AreEqual(3, epoch1.Count);
            foreach (ImageBatch batch in epoch1)
            {
                Assert.IsNotNull(batch.View2);
                CollectionAssert.AreEqual(new long[] { 4, 3, 32, 32 }, batch.Pixels.shape);
                CollectionAssert.AreEqual(batch.Pixels.shape, batch.View2.shape);
                long step = 1L * loader.StepsPerEpoch + batch.StepInEpoch;
                for (int i = 0; i < batch.Count; i++)
                {
                    int index = batch.Indices[i];
                    // Each image's views are those ViewCutter cuts for (seed, step, dataset index), whatever the batch.
                    var expected1 = new byte[3 * 32 * 32];
                    var expected2 = new byte[3 * 32 * 32];
                    ViewCutter.Cut(dataset.Paths[index], cropping, step, index, 3, expected1, expected2);
                    CollectionAssert.AreEqual(expected1, batch.Pixels[i].data<byte>().ToArray(), $"view 1 of image {index}");
                    CollectionAssert.AreEqual(expected2, batch.View2[i].data<byte>().ToArray(), $"view 2 of image {index}");
                    CollectionAssert.AreNotEqual(expected1, expected2, $"image {index}: the two views are cut differently");
                    Assert.AreEqual(dataset.Labels[index], batch.Labels[i].item<long>());
                }
            }

            // Resuming at step 2 of the epoch gives exactly the third batch.
            using var resumed = new PrefetchLoader(dataset, 4, seed: 9, views: cropping);
            using ImageBatch again = resumed.Epoch(1, startStep: 2).First();
            CollectionAssert.AreEqual(epoch1[2].Pixels.data<byte>().ToArray(), again.Pixels.data<byte>().ToArray());
            CollectionAssert.AreEqual(epoch1[2].View2!.data<byte>().ToArray(), again.View2!.data<byte>().ToArray());

            // Another epoch (so another step) cuts the same image differently.
            using ImageBatch other = loader.Epoch(2).First();
            int image = other.Indices[0];
            ImageBatch earlier = epoch1.Single(b => b.Indices.Contains(image));
            var before = earlier.Pixels[earlier.Indices.ToList().IndexOf(image)].data<byte>().ToArray();
            CollectionAssert.AreNotEqual(before, other.Pixels[0].data<byte>().ToArray());
        }
        finally
        {
            foreach (ImageBatch batch in epoch1)
                batch.Dispose();
        }
    }

    [TestMethod]
    public void ViewsCutFromTheOriginalSeeOutsideTheCentreSquare()
    {
        // A 300x100 image, left third red, middle green, right third blue: a centre-square decode sees only green; the
        // host views, cut from the whole image, see red and blue too.
        using var dir = new TempDir();
        string folder = Path.Combine(dir.Path, "a");
        Directory.CreateDirectory(folder);
        using (var bitmap = new SKBitmap(new SKImageInfo(300, 100, SKColorType.Rgba8888, SKAlphaType.Premul)))
        {
            for (int y = 0; y < 100; y++)
                for (int x = 0; x < 300; x++)
                    bitmap.SetPixel(x, y, x < 100 ? SKColors.Red : x < 200 ? SKColors.Lime : SKColors.Blue);
            using var png = bitmap.Encode(SKEncodedImageFormat.Png, 100);
            File.WriteAllBytes(Path.Combine(folder, "strip.png"), png.ToArray());
        }
        var dataset = new ImageFolderDataset(dir.Path, 16, 3);
        var cropping = new ViewCropping(new RandomResizedCrop(16, 0.08), Seed: 1);
        double red = 0, blue = 0;
        var v1 = new byte[3 * 256];
        var v2 = new byte[3 * 256];
        var labels = new long[1];
        for (int step = 0; step < 40; step++)
        {
            dataset.ReadViews([0], cropping, step, v1, v2, labels);
            foreach (byte[] v in new[] { v1, v2 })
            {
                red += v.AsSpan(0, 256).ToArray().Average(b => (double)b);
                blue += v.AsSpan(512, 256).ToArray().Average(b => (double)b);
            }
        }
        Assert.IsTrue(red / 80 > 40 && blue / 80 > 40, $"mean red {red / 80:F1}, mean blue {blue / 80:F1} over 80 views");
    }

    [TestMethod]
    public void ABrokenFileIsNamedInTheError()
    {
        using var dir = new TempDir();
        WritePhotos(dir.Path, 4);
        string broken = Path.Combine(dir.Path, "cats", "000.jpg");
        byte[] bytes = File.ReadAllBytes(broken);
        File.WriteAllBytes(broken, bytes.AsSpan(0, bytes.Length / 3).ToArray());
        var dataset = new ImageFolderDataset(dir.Path, 16, 3);
        var cropping = new ViewCropping(new RandomResizedCrop(16, 0.08), Seed: 1);
        var e = Assert.ThrowsExactly<DataFormatException>(() =>
            dataset.ReadViews([0, 1, 2, 3], cropping, 0, new byte[4 * 768], new byte[4 * 768], new long[4]));
        StringAssert.Contains(e.Message, "000.jpg");
        StringAssert.Contains(e.Message, "truncated");
    }

    [TestMethod]
    public void ViewsFromADatasetInMemoryAreRefused()
    {
        var memory = new InMemoryImageDataset("memory", new byte[8 * 64], new int[8], 1, 8, 8, ["a"]);
        var e = Assert.ThrowsExactly<ArgumentException>(() =>
            new PrefetchLoader(memory, 4, 0, views: new ViewCropping(new RandomResizedCrop(8, 0.08), 0)));
        StringAssert.Contains(e.Message, "memory");
    }

    [TestMethod]
    public void PretrainingOnAnImageFolderCutsViewsOnTheHostReproducibly()
    {
        using var dir = new TempDir();
        string data = Path.Combine(dir.Path, "photos");
        WritePhotos(data, 16);
        string preset = dir.File("micro-rgb.json");
        File.WriteAllText(preset, """
            { "name": "micro-rgb", "arch": "vit", "image_size": 32, "channels": 3, "patch_size": 8, "embed_dim": 32, "depth": 1,
              "heads": 2, "hidden_dim": 64, "out_dim": 32, "batch": 8, "epochs": 1, "warmup_epochs": 0.1, "base_lr": 1e-3,
              "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25] }
            """);
        string run = dir.File("run");
        var (code, output, error) = Cli.CliTests.Mocov3("pretrain", "--preset", preset, "--data", data, "--max-steps", "4", "--out", run,
            "--log-every", "1", "--save-every", "2");
        Assert.AreEqual(0, code, error);
        StringAssert.Contains(output, "step 4/4");
        string metrics = File.ReadAllText(Path.Combine(run, "metrics.csv"));

        // A second process draws the same views (threads decode in any order): the same losses, step by step.
        string again = dir.File("again");
        (code, _, error) = Cli.CliTests.Mocov3("pretrain", "--preset", preset, "--data", data, "--max-steps", "4", "--out", again,
            "--log-every", "1", "--save-every", "2");
        Assert.AreEqual(0, code, error);
        Assert.AreEqual(Losses(metrics), Losses(File.ReadAllText(Path.Combine(again, "metrics.csv"))));
        Assert.AreEqual(4, Losses(metrics).Split(' ').Length);
    }

    /// <summary>The step and loss columns of a metrics.csv, one "step:loss" per row.</summary>
    private static string Losses(string csv)
    {
        string[] lines = csv.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        string[] header = lines[0].Split(',');
        int step = Array.IndexOf(header, "step"), loss = Array.IndexOf(header, "loss");
        Assert.IsTrue(step >= 0 && loss >= 0, $"metrics.csv header: {lines[0]}");
        return string.Join(" ", lines.Skip(1).Select(l => l.Split(',')).Select(f => $"{f[step]}:{f[loss]}"));
    }
}
