namespace MoCoV3.Models;

/// <summary>
/// The <c>heads</c> group of a <see cref="ModelPreset"/>: the projector and the predictor MLPs (official builder: bias-free
/// Linear layers, BN+ReLU between them, a non-affine BN at the end of the projector).
/// </summary>
public sealed record HeadsConfig
{
    public int ProjectorLayers { get; init; } = 3;
    public int HiddenDim { get; init; } = 4096;
    public int OutDim { get; init; } = 256;
    public int PredictorLayers { get; init; } = 2;
    /// <summary>ViT: the predictor ends in a non-affine BN; ResNet: it does not.</summary>
    public bool PredictorLastBn { get; init; } = true;

    internal void Validate(Action<bool, string> require)
    {
        require(ProjectorLayers is >= 1 and <= ModelPreset.MaxDepth && PredictorLayers is >= 1 and <= ModelPreset.MaxDepth,
            $"projector_layers and predictor_layers must be in 1..{ModelPreset.MaxDepth}");
        require(HiddenDim is > 0 and <= ModelPreset.MaxWidth && OutDim is > 0 and <= ModelPreset.MaxWidth,
            $"hidden_dim and out_dim must be in 1..{ModelPreset.MaxWidth}");
    }
}
