using MoCoV3.Training;

namespace MoCoV3.Tests.Training;

[TestClass]
public sealed class StepFlopsTests
{
    [TestMethod]
    public void VitBackboneForward_MatchesThePublishedFlops()
    {
        // ViT-S/16 and ViT-B/16 at 224 px: 4.6 and 17.6 GMACs (DeiT, timm), i.e. 9.2 and 35.1 GFLOP.
        Assert.AreEqual(9.2e9, StepFlops.BackboneForward(TestPresets.Get("vit-small"))!.Value, 0.05e9);
        Assert.AreEqual(35.1e9, StepFlops.BackboneForward(TestPresets.Get("vit-base"))!.Value, 0.15e9);
        Assert.IsNull(StepFlops.BackboneForward(TestPresets.Get("resnet18-fmnist")));
        Assert.IsNull(StepFlops.StepPerImage(TestPresets.Get("resnet50")));
    }

    [TestMethod]
    public void Step_IsAboutEightBackboneForwardsPlusTheHeads()
    {
        var preset = TestPresets.Get("vit-small");
        double backbone = StepFlops.BackboneForward(preset)!.Value;
        double step = StepFlops.StepPerImage(preset)!.Value;
        // Heads: projector 384→4096→4096→256 (38.8 MFLOP) in both encoders, predictor 256→4096→256 (4.2 MFLOP) on the query side.
        double projector = 2.0 * (384 * 4096 + 4096 * 4096 + 4096 * 256), predictor = 2.0 * (256 * 4096 + 4096 * 256);
        Assert.AreEqual(8 * (backbone + projector) + 6 * predictor, step, 1);
        Assert.AreEqual(73.9e9, step, 0.3e9);
    }
}
