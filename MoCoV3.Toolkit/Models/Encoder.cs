using MoCoV3.Distributed;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MoCoV3.Models;

/// <summary>A backbone followed by the projector MLP: one of the two encoders of MoCo v3 (query or momentum).</summary>
public sealed class Encoder : nn.Module<Tensor, Tensor>
{
    private readonly Backbone backbone;
    private readonly Sequential projector;

    public Encoder(Backbone backbone, Sequential projector) : base(nameof(Encoder))
    {
        this.backbone = backbone;
        this.projector = projector;
        RegisterComponents();
    }

    /// <summary>Builds backbone and projector from a preset (projector input = the backbone's feature width).</summary>
    public static Encoder Create(ModelPreset preset, Func<ModelPreset, Backbone> backboneFactory)
    {
        var backbone = backboneFactory(preset);
        var projector = ProjectionMlp.Build(preset.Heads.ProjectorLayers, backbone.FeatureDim, preset.Heads.HiddenDim, preset.Heads.OutDim, lastBn: true);
        return new Encoder(backbone, projector);
    }

    public Backbone Backbone => backbone;

    public Sequential Projector => projector;

    /// <summary>
    /// The ranks of a data-parallel run over which every BatchNorm (the projector's, a ResNet backbone's) normalises, as
    /// SyncBatchNorm; null: this process's batch.
    /// </summary>
    public ICommunicator? Communicator
    {
        get => backbone.BatchNormRanks;
        set => backbone.BatchNormRanks = value;
    }

    public override Tensor forward(Tensor x) => Communicator is null
        ? Autocast.Forward(projector, backbone.forward(x))
        : SyncBatchNorm.ForwardSequential(projector, backbone.forward(x), Communicator);
}
