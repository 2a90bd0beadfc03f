using MoCoV3.Models;
using TorchSharp.Modules;
using static MoCoV3.Export.OnnxGraphBuilder;

namespace MoCoV3.Export;

/// <summary>
/// The ONNX graph of <see cref="ResNet"/> for inference: every convolution with its BatchNorm folded in (running
/// statistics: w' = w·γ/√(var+ε), b' = β − mean·γ/√(var+ε)), ReLU, the max-pool of the standard stem, residual
/// blocks with their downsample branch, then global average pooling to <c>[N, C]</c>.
/// </summary>
internal static class ResNetGraph
{
    public static string Emit(OnnxGraphBuilder g, BackboneWeights w, ModelPreset preset, string x)
    {
        bool bottleneck = preset.ResNet.Block == ResNetBlock.Bottleneck;
        string y = g.Node("Relu", "relu", [ConvBn(g, w, "conv1", "bn1", x)]);
        if (!preset.ResNet.SmallStem)
            y = g.Node("MaxPool", "maxpool", [y], Attr("kernel_shape", 3L, 3L), Attr("strides", 2L, 2L), Attr("pads", 1L, 1L, 1L, 1L));

        for (int layer = 1; layer <= 4; layer++)
        {
            for (int i = 0; i < preset.ResNet.Layers[layer - 1]; i++)
            {
                string b = $"layer{layer}.{i}";
                string r = g.Node("Relu", $"{b}.relu1", [ConvBn(g, w, $"{b}.conv1", $"{b}.bn1", y)]);
                if (bottleneck)
                {
                    r = g.Node("Relu", $"{b}.relu2", [ConvBn(g, w, $"{b}.conv2", $"{b}.bn2", r)]);
                    r = ConvBn(g, w, $"{b}.conv3", $"{b}.bn3", r);
                }
                else
                {
                    r = ConvBn(g, w, $"{b}.conv2", $"{b}.bn2", r);
                }
                string identity = w.HasModule($"{b}.downsample")
                    ? ConvBn(g, w, $"{b}.downsample.0", $"{b}.downsample.1", y)
                    : y;
                y = g.Node("Relu", $"{b}.relu", [g.Node("Add", $"{b}.residual", [r, identity])]);
            }
        }

        string pooled = g.Node("GlobalAveragePool", "avgpool", [y]);
        return g.Node("Flatten", "flatten", [pooled], Attr("axis", 1L));
    }

    /// <summary>Conv (no bias) followed by eval-mode BatchNorm, as one Conv with bias.</summary>
    private static string ConvBn(OnnxGraphBuilder g, BackboneWeights w, string convName, string bnName, string x)
    {
        var conv = w.Module<Conv2d>(convName);
        var bn = w.Module<BatchNorm2d>(bnName);
        if (conv.groups != 1 || conv.dilation.Any(v => v != 1) || conv.padding_type is not null && conv.padding is null)
            throw new InvalidOperationException($"{convName}: only ungrouped, undilated convolutions with explicit padding are exported");
        if (!bn.track_running_stats || !bn.affine)
            throw new InvalidOperationException($"{bnName}: BatchNorm without running statistics or affine parameters cannot be folded");
        long outC = conv.out_channels, inC = conv.in_channels;
        long kh = conv.kernel_size[0], kw = conv.kernel_size.Length > 1 ? conv.kernel_size[1] : kh;

        float[] weight = w.Floats($"{convName}.weight", outC, inC, kh, kw);
        float[] convBias = w.Has($"{convName}.bias") ? w.Floats($"{convName}.bias", outC) : new float[outC];
        float[] gamma = w.Floats($"{bnName}.weight", outC);
        float[] beta = w.Floats($"{bnName}.bias", outC);
        float[] mean = w.Floats($"{bnName}.running_mean", outC);
        float[] variance = w.Floats($"{bnName}.running_var", outC);
        double eps = bn.eps;

        long per = inC * kh * kw;
        var folded = new float[weight.Length];
        var bias = new float[outC];
        for (long o = 0; o < outC; o++)
        {
            double s = gamma[o] / Math.Sqrt(variance[o] + eps);
            for (long j = 0; j < per; j++) folded[o * per + j] = (float)(weight[o * per + j] * s);
            bias[o] = (float)(beta[o] + (convBias[o] - mean[o]) * s);
        }

        long sh = conv.stride[0], sw = conv.stride.Length > 1 ? conv.stride[1] : sh;
        long ph = conv.padding![0], pw = conv.padding.Length > 1 ? conv.padding[1] : ph;
        return g.Node("Conv", convName,
            [x, g.Weight($"{convName}.weight_folded", folded, outC, inC, kh, kw), g.Weight($"{convName}.bias_folded", bias, outC)],
            Attr("kernel_shape", kh, kw), Attr("strides", sh, sw), Attr("pads", ph, pw, ph, pw));
    }
}
