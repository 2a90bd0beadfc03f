using MoCoV3.Distributed;
using static TorchSharp.torch;

namespace MoCoV3.Tests.Distributed;

[TestClass]
public sealed class SingleProcessCommunicatorTests
{
    [TestMethod]
    public void EveryCollectiveOfOneRankGivesTheHandComputedValues()
    {
        using var world = new SingleProcessCommunicator();
        CollectiveExpectations.Verify(CollectiveCheck.Run(world, LaunchEnvironment.SingleProcess), 0, 1);
    }

    [TestMethod]
    public void MismatchedGatherLengthAndBadRootAreErrors()
    {
        using var world = new SingleProcessCommunicator();
        var e = Assert.ThrowsExactly<ArgumentException>(() => world.AllGather<float>(new float[3], new float[4]));
        StringAssert.Contains(e.Message, "needs a result of 3 elements, not 4");
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => world.Broadcast<float>(new float[1], root: 1));
        var type = Assert.ThrowsExactly<ArgumentException>(() => world.AllReduceSum<byte>(new byte[1]));
        StringAssert.Contains(type.Message, "not Byte");
    }

    [TestMethod]
    public void AStridedTensorIsRefusedWithItsShape()
    {
        using var world = new SingleProcessCommunicator();
        using var t = zeros(3, 4).t();
        var e = Assert.ThrowsExactly<ArgumentException>(() => world.AllReduceSum(t));
        StringAssert.Contains(e.Message, "[4, 3]");
        StringAssert.Contains(e.Message, "contiguous");
    }
}
