using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MoCoV3.Models;

/// <summary>
/// ResNet-18/34 residual block: two 3x3 convolutions, the first carrying the stride, each followed by BN;
/// ReLU after the first and after the residual sum. Field names are the torchvision state-dict keys.
/// </summary>
internal sealed class BasicBlock : nn.Module<Tensor, Tensor>
{
    public const int Expansion = 1;

    private readonly Conv2d conv1;
    private readonly BatchNorm2d bn1;
    private readonly Conv2d conv2;
    private readonly BatchNorm2d bn2;
    private readonly ReLU relu;
    private readonly Sequential? downsample;

    public BasicBlock(long inPlanes, long planes, long stride, Sequential? downsample) : base(nameof(BasicBlock))
    {
        conv1 = nn.Conv2d(inPlanes, planes, kernel_size: 3, stride: stride, padding: 1, bias: false);
        bn1 = nn.BatchNorm2d(planes);
        conv2 = nn.Conv2d(planes, planes, kernel_size: 3, stride: 1, padding: 1, bias: false);
        bn2 = nn.BatchNorm2d(planes);
        relu = nn.ReLU(inplace: true);
        this.downsample = downsample;
        RegisterComponents();
    }

    /// <summary>The BN whose output joins the residual sum; zeroed by <c>zero_init_residual</c>.</summary>
    public BatchNorm2d LastNorm => bn2;

    /// <summary>The ranks its BatchNorms normalise over (see <see cref="Backbone.BatchNormRanks"/>); null: this process's batch.</summary>
    internal MoCoV3.Distributed.ICommunicator? BatchNormRanks { get; set; }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var y = relu.forward(BackboneNorm.Forward(bn1, Autocast.Conv2d(conv1, x), BatchNormRanks));
        y = BackboneNorm.Forward(bn2, Autocast.Conv2d(conv2, y), BatchNormRanks);
        var identity = downsample is null ? x : BackboneNorm.Forward(downsample, x, BatchNormRanks);
        y.add_(identity);
        return relu.forward(y).MoveToOuterDisposeScope();
    }
}
