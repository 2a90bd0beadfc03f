namespace MoCoV3.Inference;

/// <summary>
/// An exported MoCo v3 encoder in ONNX Runtime: images in, embeddings out, preprocessed exactly as the toolkit's training
/// and evaluation read images (<see cref="ImagePreprocessing"/>).
/// <code>
/// using var encoder = ImageEncoder.Load("encoder.onnx");
/// float[] v = encoder.Embed("shoe.png");
/// IReadOnlyList&lt;float[]&gt; vs = encoder.Embed(imagePaths);   // batched, decoded in parallel
/// </code>
/// One instance holds one ONNX Runtime session and is safe to call from many threads at once; dispose it when done.
/// </summary>
public sealed class ImageEncoder : IDisposable
{
    private readonly OnnxImageModel model;
    private readonly string output;

    private ImageEncoder(OnnxImageModel model, string output)
    {
        this.model = model;
        this.output = output;
    }

    /// <summary>
    /// Loads an encoder exported by <c>mocov3 export</c> (or <c>finetune</c>, whose models also have an <c>embedding</c>
    /// output). A model from another tool needs <see cref="ImageModelOptions.InputSize"/>, <see cref="ImageModelOptions.Mean"/>
    /// and <see cref="ImageModelOptions.Std"/>.
    /// </summary>
    /// <exception cref="FileNotFoundException">No file at <paramref name="path"/>.</exception>
    /// <exception cref="InvalidDataException">Not a well-formed ONNX model, not an image model, or no preprocessing known; the message names the file.</exception>
    /// <exception cref="InvalidOperationException">CUDA asked for, but the app's ONNX Runtime has no CUDA provider.</exception>
    public static ImageEncoder Load(string path, ImageModelOptions? options = null)
    {
        var model = OnnxImageModel.Open(path, options);
        try
        {
            string output = options?.OutputName
                ?? (model.OutputWidths.ContainsKey(OnnxMetadata.EmbeddingName) ? OnnxMetadata.EmbeddingName
                    : model.OutputWidths.Count == 1 ? model.OutputWidths.Keys.Single()
                    : throw new InvalidDataException($"{path}: no output named '{OnnxMetadata.EmbeddingName}' (outputs: " +
                                                     $"{string.Join(", ", model.OutputWidths.Keys)}); set {nameof(ImageModelOptions.OutputName)}"));
            model.Width(output); // the output exists and is float
            return new ImageEncoder(model, output);
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>The model file.</summary>
    public string Path => model.Source;

    /// <summary>Width of an embedding.</summary>
    public int Dimension => model.Width(output);

    /// <summary>Height and width of the model's input.</summary>
    public int InputSize => model.Preprocessing.Size;

    /// <summary>1 (luminance) or 3 (RGB).</summary>
    public int Channels => model.Preprocessing.Channels;

    /// <summary>How images become the model's input.</summary>
    public ImagePreprocessing Preprocessing => model.Preprocessing;

    /// <summary>The toolkit's metadata (preset, embedding kind, …) and every other <c>metadata_props</c> entry.</summary>
    public ModelMetadata Metadata => model.Metadata;

    /// <summary>Images per ONNX Runtime call when embedding many.</summary>
    public int MaxBatch => model.MaxBatch;

    /// <summary>The embedding of one image file.</summary>
    /// <exception cref="DataFormatException">Not a decodable image; the message starts with the path.</exception>
    /// <exception cref="FileNotFoundException">No file at <paramref name="imagePath"/>.</exception>
    public float[] Embed(string imagePath)
    {
        var input = new float[model.Preprocessing.ValuesPerImage];
        model.Preprocessing.Load(imagePath, input);
        return model.Run(input, 1, output);
    }

    /// <summary>The embedding of the encoded image (JPEG, PNG or WebP bytes) read from <paramref name="stream"/> to its end.</summary>
    /// <param name="stream">The encoded image, read from its position to its end.</param>
    /// <param name="name">What to call the image in an error message.</param>
    public float[] Embed(Stream stream, string name = "(image stream)")
    {
        ArgumentNullException.ThrowIfNull(stream);
        using var copy = new MemoryStream();
        stream.CopyTo(copy);
        return Embed(copy.GetBuffer().AsSpan(0, (int)copy.Length), name);
    }

    /// <summary>The embedding of an encoded image (the bytes of a JPEG, PNG or WebP file).</summary>
    /// <param name="encodedImage">The bytes of a JPEG, PNG or WebP file.</param>
    /// <param name="name">What to call the image in an error message.</param>
    public float[] Embed(ReadOnlySpan<byte> encodedImage, string name = "(image bytes)")
    {
        var input = new float[model.Preprocessing.ValuesPerImage];
        model.Preprocessing.Load(encodedImage, name, input);
        return model.Run(input, 1, output);
    }

    /// <summary>
    /// The embeddings of many image files, in order: <see cref="MaxBatch"/> images per ONNX Runtime call, each batch decoded
    /// in parallel. Memory beyond the result is one batch; for more paths than the results should hold, use
    /// <see cref="EmbedEach"/>.
    /// </summary>
    public IReadOnlyList<float[]> Embed(IEnumerable<string> imagePaths)
    {
        ArgumentNullException.ThrowIfNull(imagePaths);
        return EmbedEach(imagePaths).ToList();
    }

    /// <summary>
    /// The embeddings of image files as they are enumerated, batched like <see cref="Embed(IEnumerable{string})"/>, holding
    /// at most one batch: for any number of paths.
    /// </summary>
    public IEnumerable<float[]> EmbedEach(IEnumerable<string> imagePaths)
    {
        ArgumentNullException.ThrowIfNull(imagePaths);
        var batch = new List<string>(model.MaxBatch);
        foreach (string path in imagePaths)
        {
            batch.Add(path ?? throw new ArgumentException("an image path is null", nameof(imagePaths)));
            if (batch.Count == model.MaxBatch)
            {
                foreach (var v in EmbedBatch(batch)) yield return v;
                batch.Clear();
            }
        }
        if (batch.Count > 0)
            foreach (var v in EmbedBatch(batch)) yield return v;
    }

    /// <summary>
    /// The embeddings of <paramref name="count"/> images already preprocessed into the model's input
    /// (<see cref="ImagePreprocessing"/>: CHW floats, <c>count * Channels * InputSize * InputSize</c> values), as one flat
    /// array of <c>count * Dimension</c> values.
    /// </summary>
    public float[] EmbedPreprocessed(ReadOnlySpan<float> inputs, int count) => model.Run(inputs, count, output);

    /// <summary>
    /// Embeds <paramref name="count"/> images given by <paramref name="load"/> (index, destination of that image's
    /// preprocessed input), batched and loaded in parallel; <paramref name="emit"/> receives each embedding in order.
    /// </summary>
    public void EmbedMany(int count, Action<int, Span<float>> load, Action<int, ReadOnlySpan<float>> emit)
    {
        ArgumentNullException.ThrowIfNull(load);
        ArgumentNullException.ThrowIfNull(emit);
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        model.RunMany(count, load, output, emit);
    }

    private float[][] EmbedBatch(List<string> paths)
    {
        var result = new float[paths.Count][];
        model.RunMany(paths.Count, (i, destination) => model.Preprocessing.Load(paths[i], destination), output,
                      (i, embedding) => result[i] = embedding.ToArray());
        return result;
    }

    public void Dispose() => model.Dispose();
}
