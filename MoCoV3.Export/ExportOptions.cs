namespace MoCoV3.Export;

/// <summary>How <see cref="OnnxExporter"/> writes a backbone.</summary>
public sealed record ExportOptions
{
    /// <summary>The default opset of the <c>ai.onnx</c> domain.</summary>
    public const int DefaultOpset = 17;

    /// <summary>Lowest opset the exporter writes (LayerNormalization and Shape's start/end need 17).</summary>
    public const int MinOpset = 17;

    /// <summary>Highest opset the exporter writes; every operator it uses has the same semantics from 17 up to here.</summary>
    public const int MaxOpset = 21;

    /// <summary>
    /// Above this many bytes of initializers, <see cref="OnnxExporter.Save(Onnx.ModelProto, string, long)"/> stores the
    /// initializers in a side file (ONNX external data): Google.Protobuf cannot serialise a message of 2 GiB or more.
    /// 2 GiB less 64 MiB leaves room for the graph itself.
    /// </summary>
    public const long DefaultExternalDataThresholdBytes = (2L << 30) - (64L << 20);

    /// <summary>Opset of the <c>ai.onnx</c> domain, <see cref="MinOpset"/> to <see cref="MaxOpset"/>.</summary>
    public int Opset { get; init; } = DefaultOpset;

    /// <summary>
    /// Weights and compute in float16; the graph still takes and returns float32 (a Cast after the input
    /// normalisation and before each output). Expect cosine ≥ 0.999 to the fp32 model, not 1e-4.
    /// </summary>
    public bool Fp16 { get; init; }

    /// <summary>An optional linear classifier on the embedding; adds the output <c>logits</c> <c>[N, classes]</c>.</summary>
    public LinearHead? Head { get; init; }

    /// <summary>
    /// The names of the <see cref="Head"/>'s classes in output order (ImageFolder folder names, CSV labels), stored as
    /// <c>mocov3.class_names</c> so that <c>ImageClassifier</c> returns them; needs a head with as many classes.
    /// </summary>
    public IReadOnlyList<string>? ClassNames { get; init; }

    /// <summary>See <see cref="DefaultExternalDataThresholdBytes"/>; tests force it small.</summary>
    public long ExternalDataThresholdBytes { get; init; } = DefaultExternalDataThresholdBytes;

    /// <summary>Overrides the <c>mocov3.recipe</c> metadata (default: built from the preset's recipe fields).</summary>
    public string? Recipe { get; init; }

    /// <summary>More <c>metadata_props</c> entries (e.g. where the weights came from); they may not override the <c>mocov3.*</c> keys.</summary>
    public IReadOnlyDictionary<string, string>? ExtraMetadata { get; init; }

    internal void Validate()
    {
        if (Opset is < MinOpset or > MaxOpset)
            throw new ArgumentException($"opset {Opset} is not supported: use {MinOpset} to {MaxOpset}");
        if (ExternalDataThresholdBytes < 0)
            throw new ArgumentException($"external data threshold must be >= 0, found {ExternalDataThresholdBytes}");
        if (ClassNames is not null)
        {
            if (Head is null) throw new ArgumentException("class names need a head: there is no logits output to name");
            if (ClassNames.Count != Head.Classes)
                throw new ArgumentException($"{ClassNames.Count} class names for a head of {Head.Classes} classes");
            if (ClassNames.Any(n => n is null)) throw new ArgumentException("a class name is null");
        }
    }
}
