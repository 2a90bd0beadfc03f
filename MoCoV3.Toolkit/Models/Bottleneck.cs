using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MoCoV3.Models;

/// <summary>
/// ResNet-50/101/152 residual block, torchvision "v1.5": 1x1 reduce, 3x3 (carrying the stride), 1x1 expand
/// by <see cref="Expansion"/>, each followed by BN; ReLU after the first two and after the residual sum.
/// Field names are the torchvision state-dict keys.
/// </summary>
internal sealed class Bottleneck : nn.Module<Tensor, Tensor>
{
    public const int Expansion = 4;

    private readonly Conv2d conv1;
    private readonly BatchNorm2d bn1;
    private readonly Conv2d conv2;
    private readonly BatchNorm2d bn2;
    private readonly Conv2d conv3;
    private readonly BatchNorm2d bn3;
    private readonly ReLU relu;
    private readonly Sequential? downsample;

    public Bottleneck(long inPlanes, long planes, long stride, Sequential? downsample) : base(nameof(Bottleneck))
    {
        conv1 = nn.Conv2d(inPlanes, planes, kernel_size: 1, bias: false);
        bn1 = nn.BatchNorm2d(planes);
        conv2 = nn.Conv2d(planes, planes, kernel_size: 3, stride: stride, padding: 1, bias: false);
        bn2 = nn.BatchNorm2d(planes);
        conv3 = nn.Conv2d(planes, planes * Expansion, kernel_size: 1, bias: false);
        bn3 = nn.BatchNorm2d(planes * Expansion);
        relu = nn.ReLU(inplace: true);
        this.downsample = downsample;
        RegisterComponents();
    }

    /// <summary>The BN whose output joins the residual sum; zeroed by <c>zero_init_residual</c>.</summary>
    public BatchNorm2d LastNorm => bn3;

    /// <summary>The ranks its BatchNorms normalise over (see <see cref="Backbone.BatchNormRanks"/>); null: this process's batch.</summary>
    internal MoCoV3.Distributed.ICommunicator? BatchNormRanks { get; set; }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var y = relu.forward(BackboneNorm.Forward(bn1, Autocast.Conv2d(conv1, x), BatchNormRanks));
        y = relu.forward(BackboneNorm.Forward(bn2, Autocast.Conv2d(conv2, y), BatchNormRanks));
        y = BackboneNorm.Forward(bn3, Autocast.Conv2d(conv3, y), BatchNormRanks);
        var identity = downsample is null ? x : BackboneNorm.Forward(downsample, x, BatchNormRanks);
        y.add_(identity);
        return relu.forward(y).MoveToOuterDisposeScope();
    }
}
