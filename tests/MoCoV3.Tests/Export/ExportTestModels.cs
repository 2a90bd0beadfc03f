using MoCoV3.Inference;
using MoCoV3.Export;
using MoCoV3.Models;
using Onnx;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MoCoV3.Tests.Export;

/// <summary>Small backbones with non-trivial weights for the export tests, and helpers around them.</summary>
internal static class ExportTestModels
{
    public static ModelPreset MicroResNet => TestPresets.Get("resnet18-fmnist")
        .WithResNet(resnet => resnet with { Layers = [1, 1, 1, 1] })
        .WithHeads(heads => heads with { HiddenDim = 64, OutDim = 16 })
        .WithInput(input => input with { ImageSize = 16 }) with
    {
        Name = "micro-resnet",
    };

    public static ModelPreset SmallBottleneckResNet => TestPresets.Get("resnet50")
        .WithResNet(resnet => resnet with { Layers = [1, 1, 1, 1] })
        .WithHeads(heads => heads with { HiddenDim = 64, OutDim = 16 })
        .WithInput(input => input with { ImageSize = 64 }) with
    {
        Name = "small-bottleneck",
    };

    /// <summary>
    /// The backbone of <paramref name="preset"/> with every weight moved off its initial value (zero biases, a
    /// ~0 class token, zero-initialised residual BNs would hide mistakes), and for a ResNet, BN running statistics
    /// from a few train-mode forwards. Returned in eval mode.
    /// </summary>
    public static Backbone Build(ModelPreset preset, int seed = 1)
    {
        manual_seed(seed);
        var backbone = BackboneFactory.Create(preset);
        Perturb(backbone, preset);
        return backbone;
    }

    public static void Perturb(Backbone backbone, ModelPreset preset)
    {
        using (no_grad())
        {
            foreach (var (name, p) in backbone.named_parameters())
            {
                if (name == "pos_embed") continue;
                p.add_(randn_like(p) * 0.05);
            }
            foreach (var (_, module) in backbone.named_modules())
            {
                if (module is not BatchNorm2d bn) continue;
                bn.weight!.uniform_(0.5, 1.5);
                bn.bias!.normal_(0, 0.2);
                bn.momentum = 1.0; // running statistics := those of the next train-mode batch
            }
        }
        if (backbone is ResNet)
        {
            backbone.train();
            using var noGrad = no_grad();
            using var scope = NewDisposeScope();
            backbone.forward(randn(8, preset.Input.Channels, preset.Input.ImageSize, preset.Input.ImageSize));
        }
        backbone.eval();
    }

    public static VerifyResult ExportAndVerify(Backbone backbone, ModelPreset preset, ExportOptions? options = null, int batch = 4)
    {
        var model = OnnxExporter.Export(backbone, preset, options ?? new ExportOptions());
        CollectionAssert.AreEqual(Array.Empty<string>(), OnnxModelCheck.Problems(model).ToArray());
        return OnnxVerifier.Verify(model, backbone, preset, batch: batch, seed: 3);
    }

    /// <summary>Elements of the initializers that hold weights (not normalisation, shapes or scalars).</summary>
    public static long WeightElements(ModelProto model) => model.Graph.Initializer
        .Where(t => !t.Name.StartsWith(OnnxGraphBuilder.ConstPrefix, StringComparison.Ordinal))
        .Sum(t => t.Dims.Aggregate(1L, (a, d) => a * d));

    public static string TempFolder()
    {
        return TestData.NewFolder("export-");
    }
}
