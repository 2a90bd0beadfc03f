using MoCoV3.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace MoCoV3.Tests.Runtime;

[TestClass]
public sealed class TorchRuntimeTests
{
    [TestMethod]
    public void LibTorchLoadsFromTheBuildOutputAndComputes()
    {
        // On Debian 12 this only works because the build marked libLibTorchSharp's GLIBCXX_3.4.32 need weak.
        var device = TorchRuntime.Initialize("cpu");
        Assert.AreEqual(DeviceType.CPU, device.type);
        using var a = arange(1, 5, dtype: ScalarType.Float32);
        Assert.AreEqual(30.0f, a.dot(a).item<float>());
        StringAssert.StartsWith(TorchRuntime.Describe(device), "cpu (");
    }

    [TestMethod]
    public void UnknownDeviceIsRefusedByName()
    {
        var e = Assert.ThrowsExactly<ArgumentException>(() => TorchRuntime.Initialize("tpu"));
        StringAssert.Contains(e.Message, "tpu");
    }

    [TestMethod]
    public void MissingCudaLibTorchFolderIsNamed()
    {
        var e = Assert.ThrowsExactly<DirectoryNotFoundException>(() => TorchRuntime.Initialize("cuda", "/nonexistent/torch/lib"));
        StringAssert.Contains(e.Message, "/nonexistent/torch/lib");
    }
}
