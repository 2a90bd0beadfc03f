using MoCoV3.Training;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MoCoV3.Tests.Training;

[TestClass]
public sealed class GradientClippingTests
{
    [TestMethod]
    public void GradientsAboveTheLimitAreScaledTogetherAndTheNormBeforeIsKept()
    {
        var a = new Parameter(zeros(2));
        var b = new Parameter(zeros(1));
        a.grad = tensor(new float[] { 3, 4 });
        b.grad = tensor(new float[] { 12 }); // joint norm sqrt(9 + 16 + 144) = 13
        var clip = new GradientClipping(1.3);
        clip.Apply([a, b]);
        Assert.AreEqual(13, clip.LastNorm, 1e-5);
        Assert.AreEqual(0.1, clip.LastScale, 1e-6);
        CollectionAssert.AreEqual(new[] { 0.3f, 0.4f }, a.grad!.data<float>().ToArray(), new FloatTolerance(1e-6f));
        Assert.AreEqual(1.2f, b.grad!.item<float>(), 1e-6f);

        clip = new GradientClipping(100); // within the limit: untouched
        clip.Apply([a, b]);
        Assert.AreEqual(1, clip.LastScale);
        Assert.AreEqual(1.2f, b.grad!.item<float>(), 1e-6f);
        Assert.ThrowsExactly<ArgumentException>(() => new GradientClipping(0));
    }

    private sealed class FloatTolerance(float tolerance) : System.Collections.IComparer
    {
        public int Compare(object? x, object? y) => Math.Abs((float)x! - (float)y!) <= tolerance ? 0 : 1;
    }
}
