namespace MoCoV3.Models;

/// <summary>
/// The <c>recipe</c> group of a <see cref="ModelPreset"/>: MoCo v3's pretraining recipe — the loss temperature, the optimiser
/// and its schedule, the momentum encoder's coefficient, and the augmentation's crop and blur ranges.
/// </summary>
public sealed record RecipeConfig
{
    /// <summary>τ of the contrastive loss.</summary>
    public double Temperature { get; init; } = 0.2;
    public OptimizerKind Optimizer { get; init; } = OptimizerKind.AdamW;
    /// <summary>lr = BaseLr x batch / 256.</summary>
    public double BaseLr { get; init; } = 1.5e-4;
    public double WeightDecay { get; init; } = 0.1;
    /// <summary>The momentum encoder's coefficient at the start; it follows a half-cosine to 1.</summary>
    public double Momentum0 { get; init; } = 0.99;
    public double WarmupEpochs { get; init; } = 40;
    public double Epochs { get; init; } = 300;
    /// <summary>The global batch.</summary>
    public int Batch { get; init; } = 4096;
    /// <summary>RandomResizedCrop's smallest area share.</summary>
    public double CropMin { get; init; } = 0.08;
    /// <summary>Largest Gaussian-blur sigma in pixels at the input size (BYOL: 2.0 at 224).</summary>
    public double BlurSigmaMax { get; init; } = 2.0;
    public double BlurSigmaMin { get; init; } = 0.1;

    internal void Validate(Action<bool, string> require)
    {
        require(double.IsFinite(Temperature) && Temperature > 0, $"temperature must be positive, found {Temperature}");
        require(Enum.IsDefined(Optimizer), JsonEnum.Expected<OptimizerKind>("optimizer", Optimizer.ToString()));
        require(double.IsFinite(BaseLr) && BaseLr >= 0 && double.IsFinite(WeightDecay) && WeightDecay >= 0, "base_lr and weight_decay must be finite and not negative");
        require(Momentum0 is >= 0 and <= 1, $"momentum0 must be in [0, 1], found {Momentum0}");
        require(double.IsFinite(Epochs) && Epochs > 0 && double.IsFinite(WarmupEpochs) && WarmupEpochs >= 0, "epochs must be positive and warmup_epochs not negative, both finite");
        require(Batch is > 0 and <= ModelPreset.MaxBatch, $"batch must be in 1..{ModelPreset.MaxBatch}, found {Batch}");
        require(CropMin is > 0 and <= 1, $"crop_min must be in (0, 1], found {CropMin}");
        require(BlurSigmaMin is >= 0 and <= 1000 && BlurSigmaMax is >= 0 and <= 1000, "blur_sigma_min and blur_sigma_max must be in [0, 1000]");
    }
}
