namespace MoCoV3.Inference;

/// <summary>
/// The <c>metadata_props</c> keys of an exported model. Lists of numbers are comma-separated in the invariant
/// culture (<c>0.485,0.456,0.406</c>); <see cref="Preset"/> is the full preset JSON.
/// </summary>
public static class OnnxMetadata
{
    public const string Producer = "MoCoV3.NET";
    public const string InputName = "input";
    public const string EmbeddingName = "embedding";
    public const string LogitsName = "logits";
    public const string BatchDim = "N";

    public const string Arch = "mocov3.arch";
    public const string Preset = "mocov3.preset";
    public const string InputSize = "mocov3.input_size";
    public const string Channels = "mocov3.channels";
    public const string Mean = "mocov3.mean";
    public const string Std = "mocov3.std";
    public const string EmbeddingDim = "mocov3.embedding_dim";
    public const string Recipe = "mocov3.recipe";
    /// <summary>
    /// <c>fp32</c>, <c>fp16</c> (weights and compute) or <c>int8-dynamic</c> (MatMul weights int8, activations quantised at
    /// run time, see MoCoV3.Export's DynamicInt8Quantizer); inputs and outputs are float32 in every case.
    /// </summary>
    public const string Precision = "mocov3.precision";
    /// <summary>With <c>int8-dynamic</c>: how the model was quantised (one line).</summary>
    public const string Quantization = "mocov3.quantization";
    /// <summary>Number of classes of the <c>logits</c> output, when there is a head.</summary>
    public const string HeadClasses = "mocov3.head_classes";
    /// <summary>
    /// The class names of the <c>logits</c> output, in output order, as a JSON array of strings (ImageFolder folder names,
    /// CSV labels); written by <c>lincls</c> and <c>finetune</c>, read by <see cref="ImageClassifier"/>.
    /// </summary>
    public const string ClassNames = "mocov3.class_names";
    /// <summary>What <c>embedding</c> holds: <c>cls</c>, <c>cls+mean</c>, <c>cls@lastN</c>, <c>cls+mean@lastN</c> (ViT) or <c>pool</c> (ResNet).</summary>
    public const string Embedding = "mocov3.embedding";
    /// <summary>
    /// The model's checksum (XxHash3 of the graph, metadata and weights, and of each initializer), written at export and
    /// checked before a model is loaded; see <c>OnnxDigest</c>. A model without it loads unchecked.
    /// </summary>
    public const string Digest = "mocov3.digest";
}
