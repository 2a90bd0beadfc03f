using MoCoV3.Method;
using MoCoV3.Models;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MoCoV3.Tests.Method;

[TestClass]
public sealed class MoCoTests
{
    private static MoCo Micro() => new(TestPresets.MicroVit, p => new VisionTransformer(p));

    [TestMethod]
    public void MomentumEncoderStartsAsACopyAndNeverGetsGradients()
    {
        manual_seed(7);
        using var model = Micro();
        foreach (var (q, k) in model.BaseEncoder.parameters().Zip(model.MomentumEncoder.parameters()))
        {
            Assert.IsTrue(q.allclose(k, rtol: 0, atol: 0));
            Assert.IsFalse(k.requires_grad);
        }

        using var x1 = randn(4, 1, 16, 16);
        using var x2 = randn(4, 1, 16, 16);
        var loss = model.forward(x1, x2, m: 0.99);
        loss.backward();

        Assert.IsTrue(model.MomentumEncoder.parameters().All(p => p.grad is null), "momentum encoder got a gradient");
        var named = model.named_parameters().ToDictionary(kv => kv.name, kv => kv.parameter);
        Assert.IsNull(named["base_encoder.backbone.patch_embed.proj.weight"].grad, "frozen patch projection got a gradient");
        Assert.IsNull(named["base_encoder.backbone.pos_embed"].grad, "position embedding got a gradient");
        Assert.IsNotNull(named["base_encoder.backbone.blocks.0.attn.qkv.weight"].grad);
        Assert.IsNotNull(named["base_encoder.backbone.cls_token"].grad);
        Assert.IsNotNull(named["predictor.0.weight"].grad);
        Assert.IsTrue(model.TrainableParameters().All(p => p.requires_grad));
        Assert.IsFalse(model.TrainableParameters().Any(p => ReferenceEquals(p, named["base_encoder.backbone.patch_embed.proj.weight"])));
    }

    [TestMethod]
    public void MomentumUpdateIsAnExponentialMovingAverage()
    {
        manual_seed(8);
        using var model = Micro();
        var q = model.BaseEncoder.named_parameters().ToDictionary(kv => kv.name, kv => kv.parameter);
        var k = model.MomentumEncoder.named_parameters().ToDictionary(kv => kv.name, kv => kv.parameter);
        const string name = "backbone.blocks.1.mlp.fc2.weight";
        using (no_grad()) q[name].add_(1.0);
        var before = k[name].clone();
        model.UpdateMomentumEncoder(0.9);
        var expected = before * 0.9 + q[name] * 0.1;
        Assert.IsTrue((k[name] - expected).abs().max().item<float>() < 1e-6);
        Assert.IsTrue((k[name] - before).abs().min().item<float>() > 0.09, "every element moved by ~0.1");
    }

    [TestMethod]
    public void MomentumUpdateAveragesTheFrozenParametersToo()
    {
        // builder.py averages every parameter; a momentum encoder whose frozen patch projection or position embedding
        // differs (an official checkpoint can hold such a pair) moves toward the query encoder's.
        manual_seed(10);
        using var model = Micro();
        var q = model.BaseEncoder.named_parameters().ToDictionary(kv => kv.name, kv => kv.parameter);
        var k = model.MomentumEncoder.named_parameters().ToDictionary(kv => kv.name, kv => kv.parameter);
        foreach (string name in new[] { "backbone.patch_embed.proj.weight", "backbone.pos_embed" })
        {
            Assert.IsFalse(q[name].requires_grad, $"{name} is frozen");
            using (no_grad()) k[name].add_(0.5);
            var before = k[name].clone();
            model.UpdateMomentumEncoder(0.9);
            var expected = before * 0.9 + q[name] * 0.1;
            Assert.IsTrue((k[name] - expected).abs().max().item<float>() < 1e-6, name);
            Assert.IsTrue((k[name] - before).abs().min().item<float>() > 0.04, $"{name}: every element moved toward the query encoder");
        }
    }

    [TestMethod]
    public void LossIsSymmetrisedOverBothCropOrders()
    {
        manual_seed(9);
        using var model = Micro();
        model.eval(); // fixed BN statistics so both computations see the same features
        using var x1 = randn(6, 1, 16, 16);
        using var x2 = randn(6, 1, 16, 16);
        using var _ = no_grad();
        var loss = model.forward(x1, x2, m: 1.0).item<float>();
        var q1 = model.Predictor.forward(model.BaseEncoder.forward(x1));
        var q2 = model.Predictor.forward(model.BaseEncoder.forward(x2));
        var k1 = model.MomentumEncoder.forward(x1);
        var k2 = model.MomentumEncoder.forward(x2);
        double expected = MoCo.ContrastiveLoss(q1, k2, 0.2).item<float>() + MoCo.ContrastiveLoss(q2, k1, 0.2).item<float>();
        Assert.AreEqual(expected, loss, 1e-5);
    }

    [TestMethod]
    public void HeadsFollowTheOfficialBuilder()
    {
        using var model = Micro();
        var names = model.state_dict().Keys.ToHashSet();
        // ViT projector: Linear, BN, ReLU, Linear, BN, ReLU, Linear, BN(no affine); all Linear bias-free.
        Assert.IsTrue(names.Contains("base_encoder.projector.6.weight"));
        Assert.IsTrue(names.Contains("base_encoder.projector.7.running_mean"));
        Assert.IsFalse(names.Contains("base_encoder.projector.7.weight"), "last BN must have no γ");
        Assert.IsFalse(names.Contains("base_encoder.projector.0.bias"), "Linear layers are bias-free");
        Assert.IsTrue(names.Contains("base_encoder.projector.1.weight"), "hidden BN is affine");
        // ViT predictor: Linear, BN, ReLU, Linear, BN(no affine).
        Assert.IsTrue(names.Contains("predictor.4.running_var"));
        Assert.IsFalse(names.Contains("predictor.4.weight"));

        var resnetStyle = ProjectionMlp.Build(2, 16, 64, 16, lastBn: false);
        Assert.AreEqual(4, resnetStyle.children().Count(), "ResNet predictor: Linear, BN, ReLU, Linear");
        Assert.IsInstanceOfType<Linear>(resnetStyle.children().Last());
    }
}


[TestClass]
public sealed class StepMemoryTests
{
    [TestMethod]
    public void TrainingStepsLeaveNoLiveTensorsBehind()
    {
        manual_seed(41);
        using var model = new MoCo(TestPresets.MicroVit, BackboneFactory.Create);
        using var optimizer = MoCoV3.Training.TrainStep.CreateOptimizer(TestPresets.MicroVit, model, 1e-3);
        var augmentation = MoCoV3.Augment.MoCoAugmentation.FromPreset(TestPresets.MicroVit);
        using var pixels = randint(0, 256, [8, 1, 16, 16], dtype: ScalarType.Byte);
        var live = new List<long>();
        for (int step = 0; step < 5; step++)
        {
            using (NewDisposeScope())
            {
                var (x1, x2) = augmentation.TwoViews(pixels, 0, step);
                MoCoV3.Training.TrainStep.Run(model, optimizer, x1, x2, 1e-3, 0.99);
            }
            GC.Collect();
            GC.WaitForPendingFinalizers();
            live.Add(Tensor.TotalCount);
        }
        // The first step creates optimiser state and gradients; after that the count must stay flat.
        Assert.AreEqual(live[1], live[4], $"live tensors per step: {string.Join(", ", live)}");
    }
}
