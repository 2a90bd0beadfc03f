using MoCoV3.Inference;
using MoCoV3.Inference.ML;

namespace Microsoft.ML;

/// <summary>
/// <c>mlContext.Transforms.ApplyImageEncoder(...)</c>: image embeddings from an exported MoCo v3 encoder as an ML.NET
/// transform. In the namespace of ML.NET's own catalog extensions, so that <c>using Microsoft.ML;</c> finds it.
/// </summary>
public static class ImageEncoderCatalog
{
    /// <summary>
    /// Adds <paramref name="outputColumnName"/>, the embedding (a fixed-size <see cref="float"/> vector) of the image named by
    /// <paramref name="inputColumnName"/>: a text column of image file paths, or a <see cref="byte"/> vector column holding
    /// encoded images (the bytes of JPEG, PNG or WebP files). Images are decoded and preprocessed as the encoder was trained
    /// (<see cref="ImagePreprocessing"/>) and run through ONNX Runtime <see cref="ImageModelOptions.MaxBatch"/> at a time.
    /// The fitted transformer saves with <c>mlContext.Model.Save</c> and the encoder travels inside the model zip.
    /// </summary>
    /// <param name="catalog">The transform catalog.</param>
    /// <param name="modelPath">An encoder exported by <c>mocov3 export</c> (or any image model, with explicit preprocessing in <paramref name="options"/>).</param>
    /// <param name="outputColumnName">The embedding column to add.</param>
    /// <param name="inputColumnName">The column of image paths or encoded images.</param>
    /// <param name="options">Device, threads, batch size, and the preprocessing of a model not exported by this toolkit.</param>
    public static ImageEncoderEstimator ApplyImageEncoder(this TransformsCatalog catalog, string modelPath,
                                                          string outputColumnName = "Features", string inputColumnName = "ImagePath",
                                                          ImageModelOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        return new ImageEncoderEstimator(modelPath, outputColumnName, inputColumnName, options);
    }
}
