using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MoCoV3.Models;

/// <summary>
/// ResNet backbone with the torchvision module layout, so that torchvision state-dict keys map 1:1
/// (<c>conv1</c>, <c>bn1</c>, <c>layer1.0.conv1.weight</c>, <c>layer2.0.downsample.0.weight</c>, ...), minus
/// the classifier <c>fc</c>: the MoCo v3 projector takes its place. <c>forward</c> returns the global average
/// pool, <c>[N, 512 x expansion]</c>.
/// </summary>
/// <remarks>
/// Init as torchvision: convolutions Kaiming-normal (fan_out, ReLU gain), BN weight 1 and bias 0, and with
/// <see cref="ResNetConfig.ZeroInitResidual"/> the last BN of every block starts at weight 0, so each
/// residual branch begins as the identity. With <see cref="ResNetConfig.SmallStem"/> the stem is a 3x3
/// stride-1 convolution without max-pool (for 28-32 px images); the key names stay the same.
/// </remarks>
public sealed class ResNet : Backbone
{
    private readonly Conv2d conv1;
    private readonly BatchNorm2d bn1;
    private readonly ReLU relu;
    private readonly MaxPool2d? maxpool;
    private readonly Sequential layer1;
    private readonly Sequential layer2;
    private readonly Sequential layer3;
    private readonly Sequential layer4;
    private readonly int featureDim;

    public ResNet(ModelPreset preset) : base(nameof(ResNet))
    {
        ArgumentNullException.ThrowIfNull(preset);
        if (!Enum.IsDefined(preset.ResNet.Block))
            throw new ArgumentException($"preset '{preset.Name}': {JsonEnum.Expected<ResNetBlock>("block", preset.ResNet.Block.ToString())}", nameof(preset));
        if (preset.ResNet.Layers.Length != 4 || preset.ResNet.Layers.Any(l => l <= 0))
            throw new ArgumentException($"preset '{preset.Name}': layers must be four positive block counts", nameof(preset));
        if (preset.Input.Channels <= 0)
            throw new ArgumentException($"preset '{preset.Name}': channels must be positive, found {preset.Input.Channels}", nameof(preset));

        bool bottleneck = preset.ResNet.Block == ResNetBlock.Bottleneck;
        int expansion = bottleneck ? Bottleneck.Expansion : BasicBlock.Expansion;

        conv1 = preset.ResNet.SmallStem
            ? nn.Conv2d(preset.Input.Channels, 64, kernel_size: 3, stride: 1, padding: 1, bias: false)
            : nn.Conv2d(preset.Input.Channels, 64, kernel_size: 7, stride: 2, padding: 3, bias: false);
        bn1 = nn.BatchNorm2d(64);
        relu = nn.ReLU(inplace: true);
        maxpool = preset.ResNet.SmallStem ? null : nn.MaxPool2d(kernel_size: 3, stride: 2, padding: 1);

        long inPlanes = 64;
        layer1 = MakeLayer(bottleneck, ref inPlanes, 64, preset.ResNet.Layers[0], stride: 1);
        layer2 = MakeLayer(bottleneck, ref inPlanes, 128, preset.ResNet.Layers[1], stride: 2);
        layer3 = MakeLayer(bottleneck, ref inPlanes, 256, preset.ResNet.Layers[2], stride: 2);
        layer4 = MakeLayer(bottleneck, ref inPlanes, 512, preset.ResNet.Layers[3], stride: 2);
        featureDim = 512 * expansion;

        RegisterComponents();
        Initialize(preset.ResNet.ZeroInitResidual);
    }

    public override int FeatureDim => featureDim;

    public override MoCoV3.Distributed.ICommunicator? BatchNormRanks
    {
        get => base.BatchNormRanks;
        set
        {
            base.BatchNormRanks = value;
            foreach (var (_, module) in named_modules())
            {
                if (module is BasicBlock basic) basic.BatchNormRanks = value;
                if (module is Bottleneck bottleneck) bottleneck.BatchNormRanks = value;
            }
        }
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var y = relu.forward(BackboneNorm.Forward(bn1, Autocast.Conv2d(conv1, x), BatchNormRanks));
        if (maxpool is not null) y = maxpool.forward(y);
        y = layer1.forward(y);
        y = layer2.forward(y);
        y = layer3.forward(y);
        y = layer4.forward(y);
        // Global average pool + flatten: [N, C, H, W] -> [N, C].
        return y.mean([2, 3]).MoveToOuterDisposeScope();
    }

    private static Sequential MakeLayer(bool bottleneck, ref long inPlanes, long planes, int blocks, long stride)
    {
        long outPlanes = planes * (bottleneck ? Bottleneck.Expansion : BasicBlock.Expansion);
        var modules = new nn.Module<Tensor, Tensor>[blocks];
        for (int i = 0; i < blocks; i++)
        {
            long s = i == 0 ? stride : 1;
            Sequential? downsample = null;
            if (s != 1 || inPlanes != outPlanes)
            {
                downsample = nn.Sequential(
                    nn.Conv2d(inPlanes, outPlanes, kernel_size: 1, stride: s, bias: false),
                    nn.BatchNorm2d(outPlanes));
            }
            modules[i] = bottleneck
                ? new Bottleneck(inPlanes, planes, s, downsample)
                : new BasicBlock(inPlanes, planes, s, downsample);
            inPlanes = outPlanes;
        }
        return nn.Sequential(modules);
    }

    private void Initialize(bool zeroInitResidual)
    {
        using var noGrad = no_grad();
        foreach (var (_, module) in named_modules())
        {
            switch (module)
            {
                case Conv2d conv:
                    nn.init.kaiming_normal_(conv.weight, mode: nn.init.FanInOut.FanOut, nonlinearity: nn.init.NonlinearityType.ReLU);
                    break;
                case BatchNorm2d bn:
                    nn.init.ones_(bn.weight);
                    nn.init.zeros_(bn.bias);
                    break;
            }
        }
        if (!zeroInitResidual) return;
        foreach (var (_, module) in named_modules())
        {
            switch (module)
            {
                case Bottleneck block:
                    nn.init.zeros_(block.LastNorm.weight);
                    break;
                case BasicBlock block:
                    nn.init.zeros_(block.LastNorm.weight);
                    break;
            }
        }
    }
}
