using MoCoV3.Augment;
using static TorchSharp.torch;

namespace MoCoV3.Tests.Augment;

[TestClass]
public sealed class MoCoAugmentationTests
{
    private static readonly ViewAugmentation Nothing = new(0, 0, 0, 0, 0);

    private static Tensor Pixels(int n, int channels, int size, int seed = 0)
    {
        manual_seed(seed);
        return randint(0, 256, [n, channels, size, size], dtype: ScalarType.Byte);
    }

    private static MoCoAugmentation Aug(int size, double cropMin = 0.2, int channels = 1) =>
        new(size, cropMin, 0.1, 2.0, Enumerable.Repeat(0.5, channels).ToArray(), Enumerable.Repeat(0.25, channels).ToArray());

    [TestMethod]
    public void FullCropWithoutOtherAugmentationsIsTheNormalisedImage()
    {
        // crop_min = 1 forces area 1 and (after retries) aspect 1 → the whole image, resampled on its own grid.
        using var pixels = Pixels(4, 3, 8);
        var aug = Aug(8, cropMin: 1.0, channels: 3);
        using var x = aug.Apply(pixels, Nothing, new Random(1));
        using var expected = (pixels.to_type(ScalarType.Float32) / 255.0 - 0.5) / 0.25;
        Assert.IsTrue((x - expected).abs().max().item<float>() < 1e-4);
        using var plain = aug.Plain(pixels);
        Assert.IsTrue((plain - expected).abs().max().item<float>() < 1e-6);
    }

    [TestMethod]
    public void FlipMirrorsTheImage()
    {
        using var pixels = Pixels(2, 1, 8);
        var aug = Aug(8, cropMin: 1.0);
        using var flipped = aug.Apply(pixels, Nothing with { FlipP = 1.0 }, new Random(2));
        using var expected = ((pixels.to_type(ScalarType.Float32) / 255.0 - 0.5) / 0.25).flip(3);
        Assert.IsTrue((flipped - expected).abs().max().item<float>() < 1e-4);
    }

    [TestMethod]
    public void SolarizeInvertsBrightPixels()
    {
        using var pixels = tensor(new byte[] { 0, 100, 127, 128, 200, 255, 50, 250, 10 }, [1, 1, 3, 3]);
        var aug = new MoCoAugmentation(3, 1.0, 0.1, 2.0, [0.0], [1.0]);
        using var x = aug.Apply(pixels, Nothing with { SolarizeP = 1.0 }, new Random(3));
        var v = x.flatten().data<float>().ToArray();
        float[] expected = [0, 100 / 255f, 127 / 255f, 1 - 128 / 255f, 1 - 200 / 255f, 0, 50 / 255f, 1 - 250 / 255f, 10 / 255f];
        for (int i = 0; i < 9; i++) Assert.AreEqual(expected[i], v[i], 1e-5, $"pixel {i}");
    }

    [TestMethod]
    public void GrayscaleMakesChannelsEqualToLuma()
    {
        using var pixels = Pixels(3, 3, 6);
        var aug = new MoCoAugmentation(6, 1.0, 0.1, 2.0, [0, 0, 0], [1, 1, 1]);
        using var x = aug.Apply(pixels, Nothing with { GrayscaleP = 1.0 }, new Random(4));
        var f = pixels.to_type(ScalarType.Float32) / 255.0;
        var luma = 0.299 * f[.., 0] + 0.587 * f[.., 1] + 0.114 * f[.., 2];
        for (int c = 0; c < 3; c++) Assert.IsTrue((x[.., c] - luma).abs().max().item<float>() < 1e-4, $"channel {c}");
    }

    [TestMethod]
    public void BlurKeepsMeanAndSmoothsNoise()
    {
        using var pixels = Pixels(4, 1, 28);
        var aug = new MoCoAugmentation(28, 1.0, 1.5, 1.5, [0.0], [1.0]);
        using var sharp = aug.Apply(pixels, Nothing, new Random(5));
        using var blurred = aug.Apply(pixels, Nothing with { BlurP = 1.0 }, new Random(5));
        // Normalised Gaussian with reflect padding: the mean stays, the variance of white noise drops a lot.
        Assert.AreEqual(sharp.mean().item<float>(), blurred.mean().item<float>(), 0.01);
        Assert.IsTrue(blurred.var().item<float>() < 0.2 * sharp.var().item<float>());
    }

    [TestMethod]
    public void ColourJitterStaysInRangeAndChangesColours()
    {
        // p = 1: every image is jittered; values stay in [0, 1] (normalisation here is the identity).
        using var pixels = Pixels(8, 3, 8);
        var aug = new MoCoAugmentation(8, 1.0, 0.1, 2.0, [0, 0, 0], [1, 1, 1]);
        using var plain = aug.Apply(pixels, Nothing, new Random(6));
        using var jittered = aug.Apply(pixels, Nothing with { ColorJitterP = 1.0 }, new Random(6));
        Assert.IsTrue(jittered.min().item<float>() >= 0 && jittered.max().item<float>() <= 1);
        Assert.IsTrue((jittered - plain).abs().mean().item<float>() > 0.01, "jitter changed nothing");
    }

    [TestMethod]
    public void ViewsDependOnlyOnSeedAndStep()
    {
        using var pixels = Pixels(6, 1, 28);
        var aug = Aug(28);
        var (a1, a2) = aug.TwoViews(pixels, seed: 3, step: 17);
        var (b1, b2) = aug.TwoViews(pixels, seed: 3, step: 17);
        var (c1, _) = aug.TwoViews(pixels, seed: 3, step: 18);
        Assert.IsTrue(a1.allclose(b1, 0, 0) && a2.allclose(b2, 0, 0), "same (seed, step) must give the same views");
        Assert.IsFalse(a1.allclose(a2, 1e-3, 1e-3), "the two views must differ");
        Assert.IsFalse(a1.allclose(c1, 1e-3, 1e-3), "another step must give other views");
        CollectionAssert.AreEqual(new long[] { 6, 1, 28, 28 }, a1.shape);
    }

    [TestMethod]
    public void OutputSizeFollowsThePresetNotTheInput()
    {
        using var pixels = Pixels(2, 3, 40);
        var aug = Aug(24, channels: 3);
        var (v1, v2) = aug.TwoViews(pixels, 0, 0);
        CollectionAssert.AreEqual(new long[] { 2, 3, 24, 24 }, v1.shape);
        CollectionAssert.AreEqual(new long[] { 2, 3, 24, 24 }, v2.shape);
    }

    [TestMethod]
    public void SeedSequenceIsStableAcrossProcesses()
    {
        // Fixed values: a change here would change every augmentation of every run (and break resume of old runs).
        Assert.AreEqual(SeedSequence.Derive(0, 0, 1), SeedSequence.Derive(0, 0, 1));
        Assert.AreNotEqual(SeedSequence.Derive(0, 0, 1), SeedSequence.Derive(0, 0, 2));
        Assert.AreNotEqual(SeedSequence.Derive(0, 1, 1), SeedSequence.Derive(1, 0, 1));
        // Value computed independently with a Python transcription of SplitMix64 as used here.
        Assert.AreEqual(1684538736, SeedSequence.Derive(42, 7, 1));
    }

    [TestMethod]
    public void CroppedViewsGetOnlyTheColourPart()
    {
        // Views already cut on the host: left half black, right half white. Colour jitter, grayscale, blur and solarize
        // act on every pixel alike (blur only near the edge), so each half stays flat; a device crop would move the edge.
        using var half = zeros([16, 3, 32, 32], dtype: ScalarType.Byte);
        half[.., .., .., 16..] = 255;
        var aug = Aug(32, cropMin: 0.08, channels: 3);
        var (x1, x2) = aug.TwoCroppedViews(half, half, seed: 4, step: 9);
        foreach (var x in new[] { x1, x2 })
        {
            using var left = x[.., .., .., 0..10];
            using var right = x[.., .., .., 22..];
            Assert.IsTrue((left - left[.., .., .., 0..1]).abs().max().item<float>() < 1e-4, "left half not flat");
            Assert.IsTrue((right - right[.., .., .., 0..1]).abs().max().item<float>() < 1e-4, "right half not flat");
        }
        // The colour part is random per (seed, step) and the same for the same ones.
        var (y1, _) = aug.TwoCroppedViews(half, half, seed: 4, step: 9);
        var (z1, _) = aug.TwoCroppedViews(half, half, seed: 4, step: 10);
        Assert.AreEqual(0f, (x1 - y1).abs().max().item<float>());
        Assert.IsTrue((x1 - z1).abs().max().item<float>() > 0.1f);
        Assert.IsTrue((x1 - x2).abs().max().item<float>() > 0.1f, "the two views get different colours");
    }

    [TestMethod]
    public void CroppedViewsOfAnotherSizeAreRefused()
    {
        using var small = zeros([2, 3, 16, 16], dtype: ScalarType.Byte);
        var e = Assert.ThrowsExactly<ArgumentException>(() => Aug(32, channels: 3).TwoCroppedViews(small, small, 0, 0));
        StringAssert.Contains(e.Message, "[N, C, 32, 32]");
    }
}

[TestClass]
public sealed class HueShiftTests
{
    [TestMethod]
    public void AThirdOfATurnMapsRedToGreenToBlue()
    {
        // Pixels: red, green, blue, and a dark orange (0.6, 0.3, 0.0) whose hue is 1/12.
        using var rgb = tensor(new float[] { 1, 0, 0, 0.6f, 0, 1, 0, 0.3f, 0, 0, 1, 0 }, [1, 3, 1, 4]);
        using var shifted = MoCoAugmentation.ShiftHue(rgb, tensor(new float[] { 1f / 3 }, [1, 1, 1, 1]));
        var v = shifted.flatten().data<float>().ToArray(); // R row, then G row, then B row
        float[] expected = [0, 0, 1, 0.0f, 1, 0, 0, 0.6f, 0, 1, 0, 0.3f];
        for (int i = 0; i < 12; i++) Assert.AreEqual(expected[i], v[i], 1e-5, $"value {i}");
    }

    [TestMethod]
    public void ZeroShiftIsIdentity()
    {
        manual_seed(11);
        using var rgb = rand(5, 3, 4, 4);
        using var same = MoCoAugmentation.ShiftHue(rgb, zeros(5, 1, 1, 1));
        Assert.IsTrue((same - rgb).abs().max().item<float>() < 1e-5);
    }
}
