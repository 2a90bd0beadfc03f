using MoCoV3.Method;
using MoCoV3.Models;
using MoCoV3.Training;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MoCoV3.Tests.Method;

/// <summary>
/// The bf16 mixed-precision logic of <c>--amp</c>, checked on CPU with tiny models (the CUDA speed is measured by
/// <c>bench/gpu.sh</c>): what runs in bf16, what stays fp32, and that a step under autocast matches the fp32 step.
/// </summary>
[TestClass]
public sealed class AutocastTests
{
    private static ModelPreset MicroResNet => TestPresets.Get("resnet18-fmnist")
        .WithResNet(resnet => resnet with { Layers = [1, 1, 1, 1] })
        .WithHeads(heads => heads with { HiddenDim = 64, OutDim = 16 })
        .WithInput(input => input with { ImageSize = 16 }) with
    {
        Name = "micro-resnet",
    };

    [TestMethod]
    public void LinearRunsInBf16OnlyInsideTheScopeAndTheScopeNests()
    {
        using var layer = nn.Linear(8, 4);
        using var x = randn(3, 8);
        Assert.IsNull(Autocast.ComputeType);
        using (Autocast.Enable(ScalarType.BFloat16))
        {
            using var y = Autocast.Linear(layer, x);
            Assert.AreEqual(ScalarType.BFloat16, y.dtype);
            using (Autocast.Enable(null))
            {
                using var full = Autocast.Linear(layer, x);
                Assert.AreEqual(ScalarType.Float32, full.dtype);
            }
            Assert.AreEqual(ScalarType.BFloat16, Autocast.ComputeType, "the outer scope is restored");
            using var reference = layer.forward(x);
            // bf16 keeps 8 bits of mantissa: relative error ~ 2^-8 per operand.
            Assert.IsLessThan(0.05, (y.to_type(ScalarType.Float32) - reference).abs().max().item<float>());
        }
        Assert.IsNull(Autocast.ComputeType);
        Assert.AreEqual(ScalarType.Float32, layer.weight!.dtype, "the master weights are never converted");
        Assert.ThrowsExactly<ArgumentException>(() => Autocast.Enable(ScalarType.Float16));
    }

    [TestMethod]
    public void TheViTResidualStreamAndItsNormsStayFp32UnderAutocast()
    {
        manual_seed(3);
        using var vit = new VisionTransformer(TestPresets.MicroVit);
        using var x = rand(2, 1, 16, 16);
        using var full = vit.ForwardTokens(x);
        using (Autocast.Enable(ScalarType.BFloat16))
        {
            using var mixed = vit.ForwardTokens(x);
            Assert.AreEqual(ScalarType.Float32, mixed.dtype, "LayerNorm output (and the stream it normalises) is fp32");
            float diff = (mixed - full).abs().max().item<float>();
            Assert.IsLessThan(0.1, diff, $"bf16 tokens differ from fp32 by {diff}");
            Assert.IsGreaterThan(0f, diff, "the forward really ran in bf16");
        }
    }

    [TestMethod]
    public void AnAmpStepOfTheViTMatchesTheFp32Step() => AmpStepMatchesFp32(Eval.EvalTestModels.MicroVit28, batch: 16);

    [TestMethod]
    public void AnAmpStepOfTheResNetMatchesTheFp32Step() => AmpStepMatchesFp32(MicroResNet, batch: 8); // bf16 convolutions are slow on CPUs without native bf16

    /// <summary>
    /// Two copies of the same model take one step on the same views, one in fp32 and one under bf16 autocast: the losses
    /// agree to bf16 precision, every gradient points the same way, and after the step every parameter, gradient and BN
    /// statistic of the autocast model is still fp32 (fp32 master weights and optimiser, as torch.autocast leaves them).
    /// </summary>
    private static void AmpStepMatchesFp32(ModelPreset preset, int batch)
    {
        manual_seed(7);
        using var full = new MoCo(preset, BackboneFactory.Create);
        using var mixed = new MoCo(preset, BackboneFactory.Create);
        using (no_grad())
            foreach (var (a, b) in full.state_dict().Values.Zip(mixed.state_dict().Values)) b.copy_(a);
        full.train();
        mixed.train();
        using var fullOptimizer = TrainStep.CreateOptimizer(preset, full, 1e-3);
        using var mixedOptimizer = TrainStep.CreateOptimizer(preset, mixed, 1e-3);
        // Real images: random noise images all look alike to a random network, and the projector's BatchNorm then
        // magnifies the bf16 rounding of near-identical features far beyond what training sees.
        TestData.RequireFashionMnist();
        var test = MoCoV3.Data.DatasetFactory.Open("fashion-mnist", null, 28, 1, train: false);
        using var images = MoCoV3.Export.TorchReference.FirstImages(test, 2 * batch);
        var augmentation = MoCoV3.Augment.MoCoAugmentation.FromPreset(preset);
        var (x1, x2) = (augmentation.Plain(images[..batch] * 255), augmentation.Plain(images[batch..] * 255));

        using var fullLoss = TrainStep.Run(full, fullOptimizer, x1, x2, 1e-3, 0.99);
        using var mixedLoss = TrainStep.Run(mixed, mixedOptimizer, x1, x2, 1e-3, 0.99, amp: ScalarType.BFloat16);

        Assert.AreEqual(ScalarType.Float32, mixedLoss.dtype, "the loss is computed in fp32");
        double lf = fullLoss.item<float>(), lm = mixedLoss.item<float>();
        Assert.AreEqual(lf, lm, 0.01 * Math.Abs(lf), $"loss fp32 {lf} vs bf16 autocast {lm}");
        Assert.AreNotEqual(lf, lm, "the autocast step really computed in bf16");

        var fullGrads = fullOptimizer.Parameters.Select(p => p.grad!).ToList();
        var mixedGrads = mixedOptimizer.Parameters.Select(p => p.grad!).ToList();
        Assert.HasCount(fullGrads.Count, mixedGrads);
        int compared = 0;
        for (int i = 0; i < fullGrads.Count; i++)
        {
            Assert.AreEqual(ScalarType.Float32, mixedGrads[i].dtype, "gradients of fp32 master weights are fp32");
            double norm = fullGrads[i].norm().item<float>();
            if (norm < 1e-6) continue; // e.g. zero-initialised residual BN
            double cosine = nn.functional.cosine_similarity(fullGrads[i].flatten(), mixedGrads[i].flatten(), dim: 0).item<float>();
            Assert.IsGreaterThan(0.9, cosine, $"gradient {i} ({string.Join("x", fullGrads[i].shape)}): cosine {cosine:F4} to fp32");
            compared++;
        }
        Assert.IsGreaterThan(fullGrads.Count / 2, compared);
        using var all = cat(fullGrads.Select(g => g.flatten()).ToList());
        using var allMixed = cat(mixedGrads.Select(g => g.flatten()).ToList());
        double overall = nn.functional.cosine_similarity(all, allMixed, dim: 0).item<float>();
        Assert.IsGreaterThan(0.98, overall, $"all gradients together: cosine {overall:F4} to fp32");

        foreach (var (name, tensor) in mixed.state_dict())
            if (tensor.is_floating_point())
                Assert.AreEqual(ScalarType.Float32, tensor.dtype, $"{name} stays fp32");
        var bn = mixed.modules().OfType<BatchNorm1d>().First();
        Assert.IsGreaterThan(0f, bn.running_mean!.abs().sum().item<float>(), "BN running statistics were updated");
    }
}
