using System.Text.Json;
using MoCoV3.Augment;

namespace MoCoV3.Tests.Augment;

[TestClass]
public sealed class RandomResizedCropTests
{
    [TestMethod]
    public void BoxesLieInsideTheImageWithAreaAndRatioInRange()
    {
        var crop = new RandomResizedCrop(224, 0.08);
        var rng = new Random(5);
        foreach (var (width, height) in new[] { (480, 360), (375, 500), (224, 224), (31, 17) })
        {
            for (int i = 0; i < 2000; i++)
            {
                var (top, left, h, w) = crop.Box(width, height, rng);
                Assert.IsTrue(top >= 0 && left >= 0 && h >= 1 && w >= 1 && top + h <= height && left + w <= width,
                    $"{width}x{height}: box ({top}, {left}, {h}x{w}) outside");
                double area = (double)h * w / (width * height);
                // Sides are rounded to whole pixels: allow half a pixel on each.
                double slack = ((h + 0.5) * (w + 0.5) - (double)h * w) / (width * height);
                Assert.IsTrue(area >= 0.08 - slack && area <= 1 + 1e-12, $"{width}x{height}: area fraction {area}");
                // The unrounded sides w*, h* had w*/h* in [3/4, 4/3] and lay within half a pixel of w, h.
                double ratio = (double)w / h;
                double lowest = w / (w + 0.5) * 0.75 * (h - 0.5) / h, highest = w / (w - 0.5) * (4.0 / 3) * (h + 0.5) / h;
                Assert.IsTrue(ratio >= lowest && ratio <= highest, $"{width}x{height}: ratio {ratio} outside [{lowest}, {highest}]");
            }
        }
    }

    [TestMethod]
    public void WhenNoTryFitsTheCentralCropOfTheClampedRatioIsTaken()
    {
        // 1000x10: every try asks for at least 800 px of area at a ratio <= 4/3, i.e. at least 24 rows: none fits.
        var crop = new RandomResizedCrop(64, 0.08);
        var rng = new Random(1);
        Assert.AreEqual((0, 493, 10, 13), crop.Box(1000, 10, rng));
        Assert.AreEqual((493, 0, 13, 10), crop.Box(10, 1000, rng));
        // The fallback itself: a ratio inside [3/4, 4/3] keeps the whole image.
        Assert.AreEqual((0, 0, 360, 480), RandomResizedCrop.CentralBox(480, 360));
        Assert.AreEqual((75, 0, 400, 300), RandomResizedCrop.CentralBox(300, 550));
    }

    [TestMethod]
    public void ScaleOneOnASquareImageIsTheWholeImage()
    {
        var crop = new RandomResizedCrop(64, 1.0);
        var rng = new Random(3);
        for (int i = 0; i < 100; i++)
            Assert.AreEqual((0, 0, 200, 200), crop.Box(200, 200, rng));
    }

    [TestMethod]
    public void BoxesMatchTorchvisionGetParamsInDistribution()
    {
        // Moments of 20,000 RandomResizedCrop.get_params boxes per setting, from tests/fixtures/make_crop_fixtures.py.
        string path = Path.Combine(AppContext.BaseDirectory, "Fixtures", "Crops", "cases.json");
        using var json = JsonDocument.Parse(File.ReadAllText(path));
        foreach (JsonElement s in json.RootElement.GetProperty("sampler").EnumerateArray())
        {
            int width = s.GetProperty("width").GetInt32(), height = s.GetProperty("height").GetInt32();
            int draws = s.GetProperty("draws").GetInt32();
            var crop = new RandomResizedCrop(224, s.GetProperty("scale_min").GetDouble(), s.GetProperty("scale_max").GetDouble());
            var area = new double[draws];
            var logRatio = new double[draws];
            var centreX = new double[draws];
            for (int i = 0; i < draws; i++)
            {
                // Each box from its own (seed, step, sample) stream, as the loader draws them.
                var (box, _) = crop.TwoViews(seed: 11, step: i / 256, sample: i % 256, width, height);
                area[i] = (double)box.Height * box.Width / (width * height);
                logRatio[i] = Math.Log((double)box.Width / box.Height);
                centreX[i] = (box.Left + box.Width / 2.0) / width;
            }
            // Two independent samples of 20,000: the means differ by more than 5 standard errors with probability < 1e-6.
            foreach (var (name, values) in new[] { ("area", area), ("log_ratio", logRatio), ("centre_x", centreX) })
            {
                double expected = s.GetProperty(name + "_mean").GetDouble(), std = s.GetProperty(name + "_std").GetDouble();
                double mean = values.Average();
                double ours = Math.Sqrt(values.Select(v => (v - mean) * (v - mean)).Average());
                double error = 5 * std * Math.Sqrt(2.0 / draws);
                Assert.AreEqual(expected, mean, error, $"{width}x{height} scale {crop.ScaleMin}: mean {name}");
                Assert.AreEqual(std, ours, 0.05 * std, $"{width}x{height} scale {crop.ScaleMin}: std of {name}");
            }
        }
    }

    [TestMethod]
    public void ViewsArePureFunctionsOfSeedStepAndSample()
    {
        var crop = new RandomResizedCrop(224, 0.08);
        var first = crop.TwoViews(7, 42, 1234, 500, 375);
        // Other draws in between (other threads, other samples) change nothing.
        for (int i = 0; i < 50; i++)
            crop.TwoViews(7, i, i * 3, 500, 375);
        Assert.AreEqual(first, crop.TwoViews(7, 42, 1234, 500, 375));
        Assert.AreNotEqual(first.View1, first.View2);

        var views = new HashSet<(ViewCrop, ViewCrop)>();
        for (int sample = 0; sample < 64; sample++)
            views.Add(crop.TwoViews(7, 42, sample, 500, 375));
        views.Add(crop.TwoViews(8, 42, 1234, 500, 375));
        views.Add(crop.TwoViews(7, 43, 1234, 500, 375));
        Assert.AreEqual(66, views.Count, "every (seed, step, sample) draws its own views");
        // Flips: about half.
        int flips = Enumerable.Range(0, 4000).Count(i => crop.TwoViews(1, 0, i, 500, 375).View1.Flip);
        Assert.IsTrue(flips is > 1800 and < 2200, $"{flips} of 4000 flipped");
    }

    [TestMethod]
    public void BadSettingsAreRefused()
    {
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => new RandomResizedCrop(0, 0.08));
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => new RandomResizedCrop(224, 0));
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => new RandomResizedCrop(224, 0.5, 0.4));
    }
}
