namespace MoCoV3.Runtime;

/// <summary>
/// Where a TorchSharp command computes (pretrain, lincls, finetune): the device, the libtorch to load and the CPU threads,
/// as <see cref="TorchRuntime.Initialize(ComputeOptions, bool)"/> takes them. One record, so every command names them alike.
/// </summary>
public sealed record ComputeOptions
{
    /// <summary><c>cpu</c>, <c>cuda</c> or <c>cuda:N</c>.</summary>
    public string Device { get; init; } = "cpu";
    /// <summary>A libtorch folder (e.g. a CUDA PyTorch install's <c>torch/lib</c>); null = the backend the app references.</summary>
    public string? LibTorch { get; init; }
    /// <summary>CPU threads for libtorch; null = its default.</summary>
    public int? Threads { get; init; }
}
