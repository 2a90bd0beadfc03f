using MoCoV3.Inference;
using MoCoV3.Export;

namespace MoCoV3.Eval.Probe;

/// <summary>
/// The column names of the probe's ML.NET data. The pixel and embedding columns carry the ONNX model's input and output
/// names, because the OnnxTransformer binds columns to model inputs and outputs by name.
/// </summary>
public static class ProbeColumns
{
    /// <summary>The image file path (text): the input of a saved encoder probe, as <c>ApplyImageEncoder</c> reads it.</summary>
    public const string ImagePath = "ImagePath";
    /// <summary>Float vector of C*H*W pixels in [0, 1], CHW order: the input of the saved raw-pixel baseline.</summary>
    public const string Pixels = OnnxMetadata.InputName;

    /// <summary>The encoder's output vector.</summary>
    public const string Embedding = OnnxMetadata.EmbeddingName;

    /// <summary>The standardised features the linear classifier reads.</summary>
    public const string Features = "Features";

    /// <summary>The class name (text); a key column while training.</summary>
    public const string Label = "Label";

    /// <summary>The predicted class name (text) of the saved model.</summary>
    public const string PredictedLabel = "PredictedLabel";

    /// <summary>The class probabilities, in label order.</summary>
    public const string Score = "Score";
}
