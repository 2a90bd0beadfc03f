using MoCoV3.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace MoCoV3.Tests;

[TestClass]
public sealed class ResNetTests
{
    private static ModelPreset Resnet50 => PresetCatalog.Get("resnet50");
    private static ModelPreset Resnet18Fmnist => PresetCatalog.Get("resnet18-fmnist");

    [TestMethod]
    public void Resnet50_HasTorchvisionParameterCountWithoutFc()
    {
        using var model = new ResNet(Resnet50);
        // torchvision resnet50: 25,557,032 parameters, of which fc has 2048*1000 + 1000 = 2,049,000.
        long count = model.parameters().Sum(p => p.numel());
        Assert.AreEqual(23_508_032L, count);
        Assert.AreEqual(2048, model.FeatureDim);
    }

    [TestMethod]
    public void Resnet50_StateDictKeysAreTorchvisionKeys()
    {
        using var model = new ResNet(Resnet50);
        var keys = model.state_dict().Keys.ToList();
        // 53 convolutions (1 weight each) and 53 BNs (weight, bias, running_mean, running_var,
        // num_batches_tracked): torchvision's 320 keys minus fc.weight and fc.bias.
        Assert.AreEqual(318, keys.Count);
        // TorchSharp lists every parameter before every buffer (PyTorch interleaves them per module), so only
        // the parameter order can follow torchvision's module order: stem, then blocks in forward order.
        CollectionAssert.AreEqual(
            new[] { "conv1.weight", "bn1.weight", "bn1.bias", "layer1.0.conv1.weight", "layer1.0.bn1.weight", "layer1.0.bn1.bias", "layer1.0.conv2.weight" },
            model.named_parameters().Select(np => np.name).Take(7).ToArray());
        Assert.AreEqual(159, model.parameters().Count(), "53 conv weights + 53 x (BN weight, bias)");
        foreach (var key in new[]
        {
            "layer1.0.conv1.weight", "layer1.0.bn3.bias", "layer1.0.downsample.0.weight", "layer1.0.downsample.1.running_mean",
            "layer2.0.downsample.0.weight", "layer2.3.conv3.weight", "layer3.5.bn2.weight", "layer4.2.bn3.running_var",
        })
        {
            CollectionAssert.Contains(keys, key);
        }
        CollectionAssert.DoesNotContain(keys, "layer1.1.downsample.0.weight");
        CollectionAssert.DoesNotContain(keys, "layer4.3.conv1.weight");
        Assert.IsFalse(keys.Any(k => k.StartsWith("fc.", StringComparison.Ordinal)), "the backbone has no fc");

        var shapes = model.named_parameters().ToDictionary(np => np.name, np => np.parameter.shape);
        CollectionAssert.AreEqual(new long[] { 64, 3, 7, 7 }, shapes["conv1.weight"]);
        // v1.5: the stride sits on the 3x3 conv; the 1x1 downsample carries it on the shortcut.
        CollectionAssert.AreEqual(new long[] { 128, 256, 1, 1 }, shapes["layer2.0.conv1.weight"]);
        CollectionAssert.AreEqual(new long[] { 128, 128, 3, 3 }, shapes["layer2.0.conv2.weight"]);
        CollectionAssert.AreEqual(new long[] { 512, 128, 1, 1 }, shapes["layer2.0.conv3.weight"]);
        CollectionAssert.AreEqual(new long[] { 2048, 1024, 1, 1 }, shapes["layer4.0.downsample.0.weight"]);
        CollectionAssert.AreEqual(new long[] { 2048 }, shapes["layer4.2.bn3.weight"]);
    }

    [TestMethod]
    public void Resnet50_ForwardReturnsPooledFeatures()
    {
        using var model = new ResNet(Resnet50);
        model.eval();
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var x = randn(2, 3, 224, 224);
        var y = model.forward(x);
        CollectionAssert.AreEqual(new long[] { 2, 2048 }, y.shape);
        Assert.IsTrue(y.isfinite().all().item<bool>());
        // Pooled post-ReLU activations are non-negative and, for random input, not all zero.
        Assert.IsTrue(y.min().item<float>() >= 0f);
        Assert.IsTrue(y.max().item<float>() > 0f);
    }

    [TestMethod]
    public void Resnet50_ZeroInitResidualZeroesEveryBn3Weight()
    {
        using var model = new ResNet(Resnet50);
        var named = model.named_parameters().ToDictionary(np => np.name, np => np.parameter);
        var bn3 = named.Where(kv => kv.Key.EndsWith(".bn3.weight", StringComparison.Ordinal)).ToList();
        Assert.AreEqual(16, bn3.Count, "3 + 4 + 6 + 3 bottlenecks");
        foreach (var (name, weight) in bn3)
            Assert.AreEqual(0.0, weight.abs().max().item<float>(), 0.0, name);
        // Every other BN weight is 1 and every BN bias 0.
        foreach (var (name, p) in named.Where(kv => kv.Key.Contains("bn", StringComparison.Ordinal) || kv.Key.Contains("downsample.1", StringComparison.Ordinal)))
        {
            if (name.EndsWith(".bn3.weight", StringComparison.Ordinal)) continue;
            float expected = name.EndsWith(".weight", StringComparison.Ordinal) ? 1f : 0f;
            Assert.AreEqual(expected, p.min().item<float>(), name);
            Assert.AreEqual(expected, p.max().item<float>(), name);
        }
    }

    [TestMethod]
    public void Resnet50_WithoutZeroInitResidualKeepsBn3WeightsAtOne()
    {
        using var model = new ResNet(Resnet50.WithResNet(resnet => resnet with { ZeroInitResidual = false }));
        var bn3 = model.named_parameters().Where(np => np.name.EndsWith(".bn3.weight", StringComparison.Ordinal)).ToList();
        Assert.AreEqual(16, bn3.Count);
        foreach (var (name, weight) in bn3)
            Assert.AreEqual(1f, weight.min().item<float>(), name);
    }

    [TestMethod]
    public void Convolutions_AreKaimingNormalFanOut()
    {
        using var model = new ResNet(Resnet50);
        var named = model.named_parameters().ToDictionary(np => np.name, np => np.parameter);
        // kaiming_normal_(mode=fan_out, relu): std = sqrt(2 / (out_channels * kh * kw)), mean 0.
        // (TorchSharp's default Conv2d init, kaiming_uniform(a=sqrt 5), would give sqrt(1 / (3 * fan_in)).)
        foreach (var (name, fanOut) in new[]
        {
            ("layer4.0.conv2.weight", 512 * 3 * 3),     // 2,359,296 samples
            ("layer4.1.conv3.weight", 2048 * 1 * 1),    // 1,048,576 samples
            ("layer3.0.downsample.0.weight", 1024),     // 524,288 samples
        })
        {
            var w = named[name];
            double expectedStd = Math.Sqrt(2.0 / fanOut);
            Assert.AreEqual(expectedStd, w.std().item<float>(), 0.01 * expectedStd, name);
            Assert.AreEqual(0.0, w.mean().item<float>(), 0.01 * expectedStd, name);
        }
    }

    [TestMethod]
    public void Resnet18SmallStem_ParameterCountAndShapes()
    {
        var preset = Resnet18Fmnist;
        Assert.AreEqual(1, preset.Input.Channels);
        Assert.IsTrue(preset.ResNet.SmallStem);
        using var model = new ResNet(preset);
        // Hand count (conv weights: out x in x k x k, no biases; BN: gamma + beta = 2 x channels):
        //   stem:   conv1 3x3x1x64 = 576;  bn1 128                                     ->       704
        //   layer1: 2 blocks x (2 x 3x3x64x64 = 73,728 + 2 BN x 128 = 256) = 2 x 73,984 ->   147,968
        //   layer2: block0 3x3x64x128 = 73,728 + 3x3x128x128 = 147,456 + downsample 1x1x64x128 = 8,192
        //           + 3 BN x 256 = 768 -> 230,144;  block1 2 x 147,456 + 512 = 295,424 ->   525,568
        //   layer3: block0 294,912 + 589,824 + 32,768 + 1,536 = 919,040;
        //           block1 2 x 589,824 + 1,024 = 1,180,672                             -> 2,099,712
        //   layer4: block0 1,179,648 + 2,359,296 + 131,072 + 3,072 = 3,673,088;
        //           block1 2 x 2,359,296 + 2,048 = 4,720,640                           -> 8,393,728
        //   total 704 + 147,968 + 525,568 + 2,099,712 + 8,393,728 = 11,167,680
        //   (= torchvision resnet18's 11,689,512 - fc 513,000 - (7x7x3x64 - 3x3x1x64 = 8,832)).
        long count = model.parameters().Sum(p => p.numel());
        Assert.AreEqual(11_167_680L, count);
        Assert.AreEqual(512, model.FeatureDim);

        var named = model.named_parameters().ToDictionary(np => np.name, np => np.parameter);
        CollectionAssert.AreEqual(new long[] { 64, 1, 3, 3 }, named["conv1.weight"].shape);
        Assert.IsTrue(named.ContainsKey("layer2.0.downsample.0.weight"));
        Assert.IsFalse(named.ContainsKey("layer1.0.downsample.0.weight"), "64 -> 64 at stride 1 needs no downsample");
        Assert.IsFalse(named.Keys.Any(k => k.Contains("conv3", StringComparison.Ordinal)), "basic blocks have two convs");
        // Zero-init residual: the last BN of a basic block is bn2.
        var bn2 = named.Where(kv => kv.Key.StartsWith("layer", StringComparison.Ordinal) && kv.Key.EndsWith(".bn2.weight", StringComparison.Ordinal)).ToList();
        Assert.AreEqual(8, bn2.Count);
        foreach (var (name, weight) in bn2)
            Assert.AreEqual(0.0, weight.abs().max().item<float>(), 0.0, name);
        Assert.AreEqual(1f, named["layer1.0.bn1.weight"].min().item<float>());
        Assert.AreEqual(1f, named["bn1.weight"].min().item<float>());
    }

    [TestMethod]
    public void Resnet18SmallStem_ForwardAndBackward()
    {
        using var model = new ResNet(Resnet18Fmnist);
        model.train();
        using var scope = NewDisposeScope();
        var x = randn(4, 1, 28, 28);
        var y = model.forward(x);
        CollectionAssert.AreEqual(new long[] { 4, 512 }, y.shape);
        // 28 px stays 28 in the small stem (no stride, no max-pool); layers 2-4 halve it: 28 -> 14 -> 7 -> 4.
        y.pow(2).sum().backward();
        var named = model.named_parameters().ToDictionary(np => np.name, np => np.parameter);
        foreach (var name in new[] { "conv1.weight", "bn1.weight", "layer1.0.bn2.weight", "layer4.1.bn2.bias", "layer2.0.downsample.0.weight" })
        {
            var grad = named[name].grad;
            Assert.IsNotNull(grad, name);
            Assert.IsTrue(grad.abs().sum().item<float>() > 0f, name);
        }
        // With the last BN of every block at weight 0, nothing flows back into a residual branch below it:
        // the convolutions inside the blocks start with exactly zero gradient.
        foreach (var name in new[] { "layer1.0.conv1.weight", "layer3.1.conv2.weight" })
        {
            var grad = named[name].grad;
            Assert.IsNotNull(grad, name);
            Assert.AreEqual(0f, grad.abs().max().item<float>(), name);
        }
    }

    [TestMethod]
    public void Forward_DisposesItsIntermediates()
    {
        using var model = new ResNet(Resnet18Fmnist);
        using var noGrad = no_grad();
        using var x = randn(2, 1, 28, 28);
        GC.Collect();
        GC.WaitForPendingFinalizers();
        long before = Tensor.TotalCount;
        using (var y = model.forward(x))
            Assert.AreEqual(before + 1, Tensor.TotalCount, "only the output is alive");
        Assert.AreEqual(before, Tensor.TotalCount);
    }

    [TestMethod]
    public void Resnet_RejectsBadPresets()
    {
        Assert.ThrowsExactly<ArgumentException>(() => new ResNet(Resnet50.WithResNet(resnet => resnet with { Block = (ResNetBlock)7 })));
        Assert.ThrowsExactly<ArgumentException>(() => new ResNet(Resnet50.WithResNet(resnet => resnet with { Layers = [3, 4, 6] })));
    }
}
