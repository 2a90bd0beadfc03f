using System.Buffers;
using System.Runtime.ExceptionServices;
using Microsoft.ML.OnnxRuntime;

namespace MoCoV3.Inference;

/// <summary>
/// What <see cref="ImageEncoder"/> and <see cref="ImageClassifier"/> share: one <see cref="InferenceSession"/> (its
/// <c>Run</c> is thread-safe, so one instance serves concurrent callers), the model's <see cref="ImagePreprocessing"/>,
/// and batched runs over decoded images. Every call allocates its own buffers; nothing mutable is shared between calls.
/// </summary>
internal sealed class OnnxImageModel : IDisposable
{
    private readonly InferenceSession session;
    private readonly Lazy<InferenceSession>? sideBySide;
    private readonly int callers;
    private readonly bool onCpu;
    private readonly string inputName;
    private readonly int maxBatch;
    private readonly int decodeThreads;

    private OnnxImageModel(string source, InferenceSession session, Lazy<InferenceSession>? sideBySide, int callers, bool onCpu, string inputName,
                           ImagePreprocessing preprocessing, ModelMetadata metadata, IReadOnlyDictionary<string, int> outputWidths,
                           int maxBatch, int decodeThreads)
    {
        Source = source;
        this.session = session;
        this.sideBySide = sideBySide;
        this.callers = callers;
        this.onCpu = onCpu;
        this.inputName = inputName;
        Preprocessing = preprocessing;
        Metadata = metadata;
        OutputWidths = outputWidths;
        this.maxBatch = maxBatch;
        this.decodeThreads = decodeThreads;
    }

    /// <summary>The model's path, named in every error.</summary>
    public string Source { get; }

    public ImagePreprocessing Preprocessing { get; }

    public ModelMetadata Metadata { get; }

    /// <summary>Values per image of each float output (the product of its non-batch dimensions).</summary>
    public IReadOnlyDictionary<string, int> OutputWidths { get; }

    public int MaxBatch => maxBatch;

    /// <summary>
    /// Opens <paramref name="path"/>: the file is checked in managed code (<see cref="OnnxModelFile"/>) before ONNX Runtime
    /// parses it; the preprocessing comes from the toolkit's metadata, or for a foreign model from <paramref name="options"/>.
    /// </summary>
    public static OnnxImageModel Open(string path, ImageModelOptions? options)
    {
        ArgumentNullException.ThrowIfNull(path);
        options ??= new ImageModelOptions();
        options.Validate();
        OnnxModelFile.Read(path); // FileNotFoundException, or InvalidDataException naming the file
        InferenceSession session;
        using (var sessionOptions = OnnxDevice.Create(options.Device, options.Threads))
        {
            try
            {
                session = new InferenceSession(path, sessionOptions);
            }
            catch (OnnxRuntimeException e)
            {
                throw new InvalidDataException($"{path}: ONNX Runtime cannot load the model: {FirstLine(e.Message)}", e);
            }
        }
        try
        {
            var metadata = ModelMetadata.Read(session.ModelMetadata.CustomMetadataMap, path);
            string input = InputName(session, path);
            var preprocessing = ChoosePreprocessing(session, input, metadata, options, path);
            var widths = MeasureUnknownWidths(session, input, preprocessing, OutputWidthsOf(session, path), path);
            int decode = options.DecodeThreads ?? Environment.ProcessorCount;
            // On the CPU, a batch runs as single-threaded calls side by side on a second session: measured on 2 cores for
            // the quickstart encoder, 2 callers x 1 thread gave 1.8x the images/s of one call with 2 intra-op threads.
            int threads = options.Threads ?? OrtCpuOptions.PhysicalCores;
            bool split = options.Device == "cpu" && threads > 1 && options.SideBySideBatches;
            var sideBySide = split ? new Lazy<InferenceSession>(() => OpenSingleThreaded(path)) : null;
            return new OnnxImageModel(path, session, sideBySide, threads, options.Device == "cpu", input, preprocessing, metadata, widths, options.MaxBatch, decode);
        }
        catch
        {
            session.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Runs <paramref name="count"/> preprocessed images (<c>count * ValuesPerImage</c> floats) and returns the output
    /// <paramref name="outputName"/>, <c>count * width</c> floats. Larger counts run in batches of <see cref="MaxBatch"/>.
    /// </summary>
    public float[] Run(ReadOnlySpan<float> inputs, int count, string outputName)
    {
        int per = Preprocessing.ValuesPerImage;
        if (count < 1 || inputs.Length != (long)count * per)
            throw new ArgumentException($"expected {count} images of {per} values ({Preprocessing.Channels}x{Preprocessing.Size}x{Preprocessing.Size}), found {inputs.Length} values");
        int width = Width(outputName);
        var result = new float[(long)count * width];
        for (int start = 0; start < count; start += maxBatch)
        {
            int n = Math.Min(maxBatch, count - start);
            RunBatch(inputs.Slice(start * per, n * per), n, outputName, result.AsSpan(start * width, n * width));
        }
        return result;
    }

    /// <summary>
    /// Decodes and runs the images of <paramref name="load"/> (called with an index and the destination of that image's
    /// input), <see cref="MaxBatch"/> at a time, decoding in parallel; each batch's rows are handed to
    /// <paramref name="emit"/> in order. At most one batch of inputs and outputs is held at a time.
    /// </summary>
    public void RunMany(int count, Action<int, Span<float>> load, string outputName, Action<int, ReadOnlySpan<float>> emit)
    {
        if (count == 0) return;
        int per = Preprocessing.ValuesPerImage;
        int width = Width(outputName);
        int batch = Math.Min(maxBatch, count);
        float[] inputs = ArrayPool<float>.Shared.Rent(batch * per);
        float[] outputs = ArrayPool<float>.Shared.Rent(batch * width);
        try
        {
            for (int start = 0; start < count; start += batch)
            {
                int n = Math.Min(batch, count - start);
                if (sideBySide is not null && n >= 2)
                {
                    // Each worker decodes its own part of the batch and runs it: one worker's decoding overlaps the
                    // other's inference, with no barrier between the two stages.
                    LoadAndRunSideBySide(start, n, load, outputName, inputs, outputs);
                    for (int i = 0; i < n; i++) emit(start + i, outputs.AsSpan(i * width, width));
                    continue;
                }
                var errors = new Exception?[n];
                Parallel.For(0, n, new ParallelOptions { MaxDegreeOfParallelism = decodeThreads }, i =>
                {
                    try
                    {
                        load(start + i, inputs.AsSpan(i * per, per));
                    }
                    catch (Exception e)
                    {
                        errors[i] = e;
                    }
                });
                foreach (var error in errors)
                    if (error is not null) ExceptionDispatchInfo.Throw(error);
                RunBatch(inputs.AsMemory(0, n * per), n, outputName, outputs.AsMemory(0, n * width));
                for (int i = 0; i < n; i++) emit(start + i, outputs.AsSpan(i * width, width));
            }
        }
        finally
        {
            ArrayPool<float>.Shared.Return(inputs);
            ArrayPool<float>.Shared.Return(outputs);
        }
    }

    private void LoadAndRunSideBySide(int start, int n, Action<int, Span<float>> load, string outputName, float[] inputs, float[] outputs)
    {
        var single = sideBySide!.Value;
        int parts = Math.Min(callers, n), per = Preprocessing.ValuesPerImage, width = Width(outputName);
        var errors = new Exception?[n];
        Parallel.For(0, parts, new ParallelOptions { MaxDegreeOfParallelism = parts }, part =>
        {
            int first = (int)((long)n * part / parts), end = (int)((long)n * (part + 1) / parts);
            for (int i = first; i < end; i++)
            {
                try
                {
                    load(start + i, inputs.AsSpan(i * per, per));
                }
                catch (Exception e)
                {
                    errors[i] = e;
                    return;
                }
            }
            RunInCalls(single, inputs.AsMemory(first * per, (end - first) * per), end - first, outputName, outputs.AsMemory(first * width, (end - first) * width));
        });
        // The first failure in batch order, with its original type (the other part may have run or failed too).
        foreach (var error in errors)
            if (error is not null) ExceptionDispatchInfo.Throw(error);
    }

    public int Width(string outputName) =>
        OutputWidths.TryGetValue(outputName, out int width)
            ? width
            : throw new InvalidDataException($"{Source}: the model has no float output '{outputName}' (outputs: {string.Join(", ", OutputWidths.Keys)})");

    private void RunBatch(ReadOnlySpan<float> inputs, int n, string outputName, Span<float> destination)
    {
        float[] buffer = ArrayPool<float>.Shared.Rent(inputs.Length);
        float[] output = ArrayPool<float>.Shared.Rent(destination.Length);
        try
        {
            inputs.CopyTo(buffer);
            RunBatch(buffer.AsMemory(0, inputs.Length), n, outputName, output.AsMemory(0, destination.Length));
            output.AsSpan(0, destination.Length).CopyTo(destination);
        }
        finally
        {
            ArrayPool<float>.Shared.Return(buffer);
            ArrayPool<float>.Shared.Return(output);
        }
    }

    /// <summary>
    /// Runs <paramref name="n"/> images: in one call, or on the CPU split into up to <c>Threads</c> contiguous parts run side
    /// by side on the single-threaded session (same numbers: each image's values do not depend on the rest of its batch).
    /// </summary>
    private void RunBatch(Memory<float> inputs, int n, string outputName, Memory<float> destination)
    {
        if (sideBySide is null || n < 2)
        {
            if (onCpu) RunInCalls(session, inputs, n, outputName, destination);
            else RunOn(session, inputs, n, outputName, destination.Span); // a GPU wants the whole batch
            return;
        }
        var single = sideBySide.Value;
        int parts = Math.Min(callers, n), per = Preprocessing.ValuesPerImage, width = destination.Length / n;
        Parallel.For(0, parts, new ParallelOptions { MaxDegreeOfParallelism = parts }, part =>
        {
            int start = (int)((long)n * part / parts), end = (int)((long)n * (part + 1) / parts);
            RunInCalls(single, inputs.Slice(start * per, (end - start) * per), end - start, outputName,
                       destination.Slice(start * width, (end - start) * width));
        });
    }

    /// <summary>
    /// About this many input values per single-threaded ONNX Runtime call. Measured on 2 cores (bench/inference.sh): the
    /// 28-px encoders gain from batches up to 64 images (50k values), vit-small (150k values an image) runs fastest one
    /// image per call (33.7 img/s, against 25.0 at 64): larger batches spill the activations out of the caches.
    /// </summary>
    private const int InputValuesPerCall = 1 << 16;

    /// <summary>Runs <paramref name="n"/> images on <paramref name="target"/> in calls of about <see cref="InputValuesPerCall"/> values.</summary>
    private void RunInCalls(InferenceSession target, Memory<float> inputs, int n, string outputName, Memory<float> destination)
    {
        int per = Preprocessing.ValuesPerImage, width = destination.Length / n;
        int perCall = Math.Clamp(InputValuesPerCall / per, 1, n);
        for (int start = 0; start < n; start += perCall)
        {
            int count = Math.Min(perCall, n - start);
            RunOn(target, inputs.Slice(start * per, count * per), count, outputName, destination.Span.Slice(start * width, count * width));
        }
    }

    private void RunOn(InferenceSession target, Memory<float> inputs, int n, string outputName, Span<float> destination)
    {
        int size = Preprocessing.Size;
        using var input = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, inputs, [n, Preprocessing.Channels, size, size]);
        using var runOptions = new RunOptions();
        IDisposableReadOnlyCollection<OrtValue> outputs;
        try
        {
            outputs = target.Run(runOptions, [inputName], [input], [outputName]);
        }
        catch (OnnxRuntimeException e)
        {
            throw new InvalidDataException($"{Source}: cannot run the model on {n} images: {FirstLine(e.Message)}", e);
        }
        using (outputs)
        {
            var values = outputs[0].GetTensorDataAsSpan<float>();
            if (values.Length != destination.Length)
                throw new InvalidDataException($"{Source}: output '{outputName}' has {values.Length} values for {n} images, expected {destination.Length}");
            values.CopyTo(destination);
        }
    }

    private static InferenceSession OpenSingleThreaded(string path)
    {
        using var options = OrtCpuOptions.Create(threads: 1);
        return new InferenceSession(path, options);
    }

    /// <summary>Outputs whose width the shape does not fix are measured on one blank image.</summary>
    private static Dictionary<string, int> MeasureUnknownWidths(InferenceSession session, string inputName, ImagePreprocessing pre,
                                                                Dictionary<string, int> widths, string source)
    {
        var unknown = widths.Where(w => w.Value <= 0).Select(w => w.Key).ToArray();
        if (unknown.Length == 0) return widths;
        var blank = new float[pre.ValuesPerImage];
        using var input = OrtValue.CreateTensorValueFromMemory(blank, [1, pre.Channels, pre.Size, pre.Size]);
        using var runOptions = new RunOptions();
        try
        {
            using var outputs = session.Run(runOptions, [inputName], [input], unknown);
            for (int i = 0; i < unknown.Length; i++) widths[unknown[i]] = outputs[i].GetTensorDataAsSpan<float>().Length;
        }
        catch (OnnxRuntimeException e)
        {
            throw new InvalidDataException($"{source}: cannot run the model on one {pre.Channels}x{pre.Size}x{pre.Size} image: {FirstLine(e.Message)}", e);
        }
        return widths;
    }

    private static string InputName(InferenceSession session, string path)
    {
        if (session.InputMetadata.ContainsKey(OnnxMetadata.InputName)) return OnnxMetadata.InputName;
        if (session.InputMetadata.Count == 1) return session.InputNames[0];
        throw new InvalidDataException($"{path}: expected one image input (or one named '{OnnxMetadata.InputName}'), found {session.InputMetadata.Count}: " +
                                       string.Join(", ", session.InputNames));
    }

    private static ImagePreprocessing ChoosePreprocessing(InferenceSession session, string input, ModelMetadata metadata, ImageModelOptions options, string path)
    {
        var meta = session.InputMetadata[input];
        if (meta.ElementType != typeof(float) || meta.Dimensions.Length != 4)
            throw new InvalidDataException($"{path}: input '{input}' should be float32 [N, C, H, W], found {meta.ElementType.Name} [{string.Join(", ", meta.Dimensions)}]");
        int[] d = meta.Dimensions; // -1 where symbolic
        bool foreignSettings = options.InputSize is not null || options.Mean is not null || options.Std is not null || options.Channels is not null;
        ImagePreprocessing preprocessing;
        if (metadata.IsToolkitModel)
        {
            if (foreignSettings)
                throw new ArgumentException($"{path} carries its own preprocessing ({OnnxMetadata.InputSize} {metadata.InputSize}, " +
                                            $"{metadata.Channels} channels, normalisation inside the graph); leave InputSize, Channels, Mean and Std unset");
            preprocessing = new ImagePreprocessing(metadata.InputSize!.Value, metadata.Channels!.Value, metadata.Mean!, metadata.Std!, normalizeOnHost: false);
        }
        else
        {
            var missing = new List<string>();
            if (options.InputSize is null) missing.Add("InputSize");
            if (options.Mean is null) missing.Add("Mean");
            if (options.Std is null) missing.Add("Std");
            if (missing.Count > 0)
                throw new InvalidDataException($"{path}: no MoCoV3.NET preprocessing metadata (missing {string.Join(", ", metadata.MissingPreprocessingKeys())}): " +
                                               $"the model was not exported by this toolkit. To use it anyway, set {string.Join(", ", missing)} in {nameof(ImageModelOptions)} " +
                                               "(the input size, and the per-channel mean and std its training normalised with)");
            int channels = options.Channels ?? (d[1] > 0 ? d[1] : 3);
            try
            {
                preprocessing = new ImagePreprocessing(options.InputSize!.Value, channels, options.Mean!, options.Std!, normalizeOnHost: true);
            }
            catch (ArgumentException e)
            {
                throw new ArgumentException($"{path}: {e.Message}", e);
            }
        }
        if ((d[1] > 0 && d[1] != preprocessing.Channels) || (d[2] > 0 && d[2] != preprocessing.Size) || (d[3] > 0 && d[3] != preprocessing.Size))
            throw new InvalidDataException($"{path}: input '{input}' has the shape [{string.Join(", ", d)}], which does not take " +
                                           $"{preprocessing.Channels}x{preprocessing.Size}x{preprocessing.Size} images");
        return preprocessing;
    }

    private static Dictionary<string, int> OutputWidthsOf(InferenceSession session, string path)
    {
        var widths = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var (name, meta) in session.OutputMetadata)
        {
            if (meta.ElementType != typeof(float) || meta.Dimensions.Length < 1) continue;
            long width = 1;
            foreach (int dim in meta.Dimensions.Skip(1)) width = dim > 0 && width > 0 ? width * dim : -1;
            widths[name] = width > int.MaxValue ? throw new InvalidDataException($"{path}: output '{name}' is too wide ({width} values per image)") : (int)width;
        }
        if (widths.Count == 0) throw new InvalidDataException($"{path}: the model has no float32 output");
        return widths;
    }

    private static string FirstLine(string message) => message.Split('\n')[0].Trim();

    public void Dispose()
    {
        session.Dispose();
        if (sideBySide is { IsValueCreated: true }) sideBySide.Value.Dispose();
    }
}
