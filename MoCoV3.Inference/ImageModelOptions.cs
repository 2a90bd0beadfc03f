namespace MoCoV3.Inference;

/// <summary>
/// How <see cref="ImageEncoder"/> and <see cref="ImageClassifier"/> run a model. The defaults suit a model exported by
/// this toolkit on the CPU. A model exported by another tool (no <c>mocov3.*</c> metadata) needs
/// <see cref="InputSize"/>, <see cref="Mean"/> and <see cref="Std"/>: its images are then normalised on the host.
/// </summary>
public sealed record ImageModelOptions
{
    /// <summary><c>cpu</c> (default), <c>cuda</c> or <c>cuda:N</c>. CUDA needs the app to reference <c>Microsoft.ML.OnnxRuntime.Gpu</c>.</summary>
    public string Device { get; init; } = "cpu";

    /// <summary>ONNX Runtime intra-op threads on the CPU; default: one per physical core.</summary>
    public int? Threads { get; init; }

    /// <summary>Images per ONNX Runtime call when embedding many (also bounds the memory a call holds). Default 64.</summary>
    public int MaxBatch { get; init; } = 64;

    /// <summary>
    /// On the CPU with more than one thread: run a batch of several images as <see cref="Threads"/> single-threaded
    /// ONNX Runtime calls side by side (default), rather than one call whose operators use every thread. Small models
    /// gain most (the quickstart encoder on 2 cores: 1.8x the images/s); the cost is a second session, created on the
    /// first batch, which holds the weights again. Single-image calls always use the main session, for the lowest latency.
    /// </summary>
    public bool SideBySideBatches { get; init; } = true;

    /// <summary>Images decoded side by side when embedding many; default: the number of logical processors.</summary>
    public int? DecodeThreads { get; init; }

    /// <summary>For a model without toolkit metadata: the input height and width.</summary>
    public int? InputSize { get; init; }

    /// <summary>For a model without toolkit metadata: 1 or 3; default the model's channel dimension, else 3.</summary>
    public int? Channels { get; init; }

    /// <summary>For a model without toolkit metadata: the per-channel mean applied on the host (e.g. 0.485, 0.456, 0.406).</summary>
    public IReadOnlyList<float>? Mean { get; init; }

    /// <summary>For a model without toolkit metadata: the per-channel std applied on the host (e.g. 0.229, 0.224, 0.225).</summary>
    public IReadOnlyList<float>? Std { get; init; }

    /// <summary>The output to read; default <c>embedding</c> (encoder) or <c>logits</c> (classifier), or a foreign model's only output.</summary>
    public string? OutputName { get; init; }

    internal void Validate()
    {
        if (MaxBatch < 1) throw new ArgumentException($"MaxBatch must be at least 1, found {MaxBatch}");
        if (Threads is < 1) throw new ArgumentException($"Threads must be at least 1, found {Threads}");
        if (DecodeThreads is < 1) throw new ArgumentException($"DecodeThreads must be at least 1, found {DecodeThreads}");
        ArgumentNullException.ThrowIfNull(Device);
    }
}
