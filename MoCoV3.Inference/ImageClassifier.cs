namespace MoCoV3.Inference;

/// <summary>
/// An exported classifier (<c>mocov3 finetune</c>, <c>mocov3 lincls --onnx</c>, or <c>mocov3 export --head</c>) in ONNX
/// Runtime: images in, class probabilities out (softmax of the <c>logits</c> output), with the class names the exporter
/// stored in the model (<see cref="OnnxMetadata.ClassNames"/>; the class indices as text when it stored none).
/// <code>
/// using var classifier = ImageClassifier.Load("classifier.onnx");
/// foreach (var (label, p) in classifier.Classify("shoe.png", topK: 5)) Console.WriteLine($"{label} {p:P1}");
/// </code>
/// Safe to call from many threads at once.
/// </summary>
public sealed class ImageClassifier : IDisposable
{
    private readonly OnnxImageModel model;
    private readonly string output;

    private ImageClassifier(OnnxImageModel model, string output, IReadOnlyList<string> classes)
    {
        this.model = model;
        this.output = output;
        Classes = classes;
    }

    /// <exception cref="FileNotFoundException">No file at <paramref name="path"/>.</exception>
    /// <exception cref="InvalidDataException">Not a well-formed ONNX model or no <c>logits</c> output; the message names the file.</exception>
    public static ImageClassifier Load(string path, ImageModelOptions? options = null)
    {
        var model = OnnxImageModel.Open(path, options);
        try
        {
            string output = options?.OutputName
                ?? (model.OutputWidths.ContainsKey(OnnxMetadata.LogitsName) ? OnnxMetadata.LogitsName
                    : !model.Metadata.IsToolkitModel && model.OutputWidths.Count == 1 ? model.OutputWidths.Keys.Single()
                    : throw new InvalidDataException($"{path}: no output named '{OnnxMetadata.LogitsName}' (outputs: " +
                                                     $"{string.Join(", ", model.OutputWidths.Keys)}): not a classifier. Export one with " +
                                                     "`mocov3 finetune`, `mocov3 export --head`, or load it with ImageEncoder"));
            int classes = model.Width(output);
            var names = model.Metadata.ClassNames;
            if (names is not null && names.Count != classes)
                throw new InvalidDataException($"{path}: metadata names {names.Count} classes, output '{output}' has {classes}");
            return new ImageClassifier(model, output, names ?? Enumerable.Range(0, classes).Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture)).ToArray());
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    public string Path => model.Source;

    /// <summary>The class names, in the order of the model's outputs.</summary>
    public IReadOnlyList<string> Classes { get; }

    public int InputSize => model.Preprocessing.Size;

    public int Channels => model.Preprocessing.Channels;

    public ImagePreprocessing Preprocessing => model.Preprocessing;

    public ModelMetadata Metadata => model.Metadata;

    /// <summary>The <paramref name="topK"/> most probable classes of one image file, most probable first.</summary>
    /// <exception cref="DataFormatException">Not a decodable image; the message starts with the path.</exception>
    public IReadOnlyList<(string Label, float Probability)> Classify(string imagePath, int topK = 5) => Top(Probabilities(imagePath), topK);

    /// <summary>The <paramref name="topK"/> most probable classes of an encoded image (JPEG, PNG or WebP bytes).</summary>
    public IReadOnlyList<(string Label, float Probability)> Classify(ReadOnlySpan<byte> encodedImage, int topK = 5, string name = "(image bytes)")
    {
        var input = new float[model.Preprocessing.ValuesPerImage];
        model.Preprocessing.Load(encodedImage, name, input);
        return Top(Softmax(model.Run(input, 1, output)), topK);
    }

    /// <summary>The <paramref name="topK"/> most probable classes of the encoded image read from <paramref name="stream"/>.</summary>
    public IReadOnlyList<(string Label, float Probability)> Classify(Stream stream, int topK = 5, string name = "(image stream)")
    {
        ArgumentNullException.ThrowIfNull(stream);
        using var copy = new MemoryStream();
        stream.CopyTo(copy);
        return Classify(copy.GetBuffer().AsSpan(0, (int)copy.Length), topK, name);
    }

    /// <summary>The top classes of many image files, in order, batched and decoded in parallel.</summary>
    public IReadOnlyList<IReadOnlyList<(string Label, float Probability)>> Classify(IEnumerable<string> imagePaths, int topK = 5)
    {
        ArgumentNullException.ThrowIfNull(imagePaths);
        var paths = imagePaths.ToList();
        var result = new IReadOnlyList<(string, float)>[paths.Count];
        model.RunMany(paths.Count, (i, destination) => model.Preprocessing.Load(paths[i], destination), output,
                      (i, logits) => result[i] = Top(Softmax(logits.ToArray()), topK));
        return result;
    }

    /// <summary>The probability of every class (in <see cref="Classes"/> order) for one image file.</summary>
    public float[] Probabilities(string imagePath)
    {
        var input = new float[model.Preprocessing.ValuesPerImage];
        model.Preprocessing.Load(imagePath, input);
        return Softmax(model.Run(input, 1, output));
    }

    /// <summary>The raw <c>logits</c> of <paramref name="count"/> preprocessed images, <c>count * Classes.Count</c> values.</summary>
    public float[] LogitsPreprocessed(ReadOnlySpan<float> inputs, int count) => model.Run(inputs, count, output);

    private IReadOnlyList<(string Label, float Probability)> Top(float[] probabilities, int topK)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(topK, 1);
        return Enumerable.Range(0, probabilities.Length)
            .OrderByDescending(i => probabilities[i]).ThenBy(i => i)
            .Take(topK)
            .Select(i => (Classes[i], probabilities[i]))
            .ToArray();
    }

    /// <summary>Softmax in place (max subtracted first), returning the array.</summary>
    internal static float[] Softmax(float[] logits)
    {
        float max = logits.Max();
        double sum = 0;
        for (int i = 0; i < logits.Length; i++)
        {
            logits[i] = MathF.Exp(logits[i] - max);
            sum += logits[i];
        }
        for (int i = 0; i < logits.Length; i++) logits[i] = (float)(logits[i] / sum);
        return logits;
    }

    public void Dispose() => model.Dispose();
}
