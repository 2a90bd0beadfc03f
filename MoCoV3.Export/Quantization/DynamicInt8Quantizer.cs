using MoCoV3.Inference;
using System.Globalization;
using System.Runtime.InteropServices;
using Google.Protobuf;
using Onnx;
using static MoCoV3.Export.OnnxGraphBuilder;

namespace MoCoV3.Export.Quantization;

/// <summary>
/// Dynamic int8 quantisation of an exported float32 model, in standard ONNX (opset ≥ 11) so any runtime and
/// <c>onnx.checker</c> accept it. Every <c>MatMul</c> whose second input is a constant 2-D float initializer
/// <c>W [K, N]</c> becomes
/// <code>
///   x_q, x_scale, x_zp = DynamicQuantizeLinear(x)            // uint8, per tensor, computed at run time
///   y = Cast&lt;float&gt;(MatMulInteger(x_q, W_q, x_zp)) * (x_scale * W_scale)
/// </code>
/// with <c>W_q</c> int8, symmetric (zero point 0) and one scale per output column: <c>W_scale[n] = max_k |W[k,n]| / q</c>,
/// q = 127, or 63 with <see cref="Int8QuantizeOptions.ReduceRange"/>. The MatMul's output keeps its name, so a
/// following bias <c>Add</c> is untouched. ONNX Runtime fuses the chain into its <c>DynamicQuantizeMatMul</c> kernel.
/// MatMuls of two activations (attention scores) and convolutions stay float32. The model is marked
/// <c>mocov3.precision = int8-dynamic</c>; quantising it again is refused.
/// </summary>
public static class DynamicInt8Quantizer
{
    /// <summary>The <see cref="OnnxMetadata.Precision"/> value of a quantised model.</summary>
    public const string Precision = "int8-dynamic";

    /// <summary>Opset that introduced <c>DynamicQuantizeLinear</c>.</summary>
    public const int MinOpset = 11;

    private const int Int8 = (int)TensorProto.Types.DataType.Int8;

    /// <summary>Returns a quantised copy of <paramref name="model"/>; the model given is not changed.</summary>
    public static QuantizedModel Quantize(ModelProto model, Int8QuantizeOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        options ??= new Int8QuantizeOptions();
        options.Validate();
        if (model.Graph is null) throw new ArgumentException("the model has no graph");
        string precision = model.MetadataProps.FirstOrDefault(p => p.Key == OnnxMetadata.Precision)?.Value ?? "fp32";
        if (precision == Precision)
            throw new InvalidOperationException("the model is already int8-dynamic; quantise the float32 export instead");
        if (precision != "fp32")
            throw new InvalidOperationException($"only float32 models can be quantised, this one is {precision}");
        long opset = model.OpsetImport.Where(o => o.Domain is "" or "ai.onnx").Select(o => o.Version).DefaultIfEmpty(0).Max();
        if (opset < MinOpset) throw new InvalidOperationException($"opset {opset} has no DynamicQuantizeLinear; need {MinOpset} or newer");

        var result = model.Clone();
        OnnxDigest.Remove(result); // the content changes: OnnxExporter.Save seals it again
        var graph = result.Graph;
        var initializers = graph.Initializer.ToDictionary(t => t.Name, StringComparer.Ordinal);
        var uses = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var input in graph.Node.SelectMany(n => n.Input)) uses[input] = uses.GetValueOrDefault(input) + 1;

        var names = new HashSet<string>(graph.Node.Select(n => n.Name).Concat(graph.Node.SelectMany(n => n.Output)).Concat(initializers.Keys),
                                        StringComparer.Ordinal);
        var nodes = new List<NodeProto>(graph.Node.Count * 2);
        var quantizedInputs = new Dictionary<string, (string Q, string Scale, string ZeroPoint)>(StringComparer.Ordinal);
        var quantizedWeights = new Dictionary<string, (string Q, string Scale)>(StringComparer.Ordinal);
        var replacedUses = new Dictionary<string, int>(StringComparer.Ordinal);
        int quantized = 0, skipped = 0;
        long before = 0, after = 0;
        int qmax = options.ReduceRange ? 63 : 127;

        foreach (var node in graph.Node)
        {
            if (node.OpType == "MatMul" && node.Input.Count == 2 && initializers.TryGetValue(node.Input[1], out var external)
                && external.DataLocation == TensorProto.Types.DataLocation.External)
                throw new InvalidOperationException(
                    $"weight '{external.Name}' is in external data; quantise the model in memory before it is saved (export --quantize int8)");
            if (node.OpType != "MatMul" || node.Domain is not ("" or "ai.onnx") || node.Input.Count != 2
                || !initializers.TryGetValue(node.Input[1], out var weight) || !IsFloatMatrix(weight))
            {
                nodes.Add(node);
                continue;
            }
            long k = weight.Dims[0], n = weight.Dims[1];
            if (k * n < options.MinWeightElements)
            {
                skipped++;
                nodes.Add(node);
                continue;
            }

            string baseName = string.IsNullOrEmpty(node.Name) ? node.Output[0] : node.Name;
            if (!quantizedWeights.TryGetValue(weight.Name, out var w))
            {
                var (q, scale) = QuantizeColumns(Floats(weight), k, n, qmax);
                w = (Unique(names, weight.Name + "_quantized"), Unique(names, weight.Name + "_scale"));
                graph.Initializer.Add(Tensor(w.Q, Int8, q, k, n));
                graph.Initializer.Add(Tensor(w.Scale, Float, MemoryMarshal.AsBytes(scale.AsSpan()).ToArray(), n));
                quantizedWeights[weight.Name] = w;
                before += k * n * sizeof(float);
                after += k * n + n * sizeof(float);
            }
            replacedUses[weight.Name] = replacedUses.GetValueOrDefault(weight.Name) + 1;

            string x = node.Input[0];
            if (!quantizedInputs.TryGetValue(x, out var xq))
            {
                xq = (Unique(names, baseName + "/quant/x_q"), Unique(names, baseName + "/quant/x_scale"), Unique(names, baseName + "/quant/x_zero_point"));
                nodes.Add(Node("DynamicQuantizeLinear", Unique(names, baseName + "/quant/DynamicQuantizeLinear"), [x], [xq.Q, xq.Scale, xq.ZeroPoint]));
                quantizedInputs[x] = xq;
            }
            string product = Unique(names, baseName + "/quant/MatMulInteger");
            nodes.Add(Node("MatMulInteger", product, [xq.Q, w.Q, xq.ZeroPoint], [product]));
            string asFloat = Unique(names, baseName + "/quant/Cast");
            nodes.Add(Node("Cast", asFloat, [product], [asFloat], Attr("to", (long)Float)));
            string combined = Unique(names, baseName + "/quant/scale");
            nodes.Add(Node("Mul", combined, [xq.Scale, w.Scale], [combined]));
            nodes.Add(Node("Mul", Unique(names, baseName + "/quant/Mul"), [asFloat, combined], [node.Output[0]]));
            quantized++;
        }
        if (quantized == 0)
            throw new InvalidOperationException(skipped > 0
                ? $"all {skipped} MatMuls with a constant weight are below {options.MinWeightElements} weight elements; nothing to quantise"
                : "the model has no MatMul with a constant 2-D float32 weight (convolutions are not quantised); nothing to quantise");

        graph.Node.Clear();
        graph.Node.AddRange(nodes);
        // A float weight read only by the MatMuls that were replaced is dropped.
        foreach (var (name, count) in replacedUses)
            if (uses.GetValueOrDefault(name) == count && !graph.Output.Any(o => o.Name == name))
                graph.Initializer.Remove(initializers[name]);

        SetMetadata(result, OnnxMetadata.Precision, Precision);
        SetMetadata(result, OnnxMetadata.Quantization, string.Create(CultureInfo.InvariantCulture,
            $"dynamic int8: MatMul weights int8 symmetric per output column ({(options.ReduceRange ? "7-bit, reduce_range" : "8-bit")}), " +
            $"activations uint8 per tensor at run time; {quantized} MatMuls"));
        return new QuantizedModel(result, quantized, skipped, before, after);
    }

    /// <summary>Whether the model was written by <see cref="Quantize"/>.</summary>
    public static bool IsQuantized(ModelProto model) =>
        model.MetadataProps.Any(p => p.Key == OnnxMetadata.Precision && p.Value == Precision);

    /// <summary>
    /// Symmetric int8 per column of a row-major <c>[k, n]</c> matrix: scale[j] = max_i |w[i,j]| / qmax (1 for an all-zero
    /// column), q = round(w / scale) clamped to ±qmax. Two passes over the rows, so the weight is read in order.
    /// </summary>
    internal static (byte[] Q, float[] Scale) QuantizeColumns(ReadOnlySpan<float> w, long k, long n, int qmax)
    {
        if (w.Length != k * n) throw new ArgumentException($"{w.Length} values are not a {k}x{n} matrix");
        var scale = new float[n];
        for (long i = 0; i < k; i++)
        {
            var row = w.Slice((int)(i * n), (int)n);
            for (int j = 0; j < n; j++) scale[j] = Math.Max(scale[j], Math.Abs(row[j]));
        }
        for (int j = 0; j < n; j++)
        {
            if (!float.IsFinite(scale[j])) throw new InvalidDataException($"column {j} of the weight is not finite");
            scale[j] = scale[j] > 0 ? scale[j] / qmax : 1f;
        }
        var q = new byte[k * n];
        var qs = MemoryMarshal.Cast<byte, sbyte>(q.AsSpan());
        for (long i = 0; i < k; i++)
        {
            long offset = i * n;
            for (int j = 0; j < n; j++)
                qs[(int)(offset + j)] = (sbyte)Math.Clamp((int)MathF.Round(w[(int)(offset + j)] / scale[j], MidpointRounding.ToEven), -qmax, qmax);
        }
        return (q, scale);
    }

    private static bool IsFloatMatrix(TensorProto t) =>
        t.DataType == Float && t.Dims.Count == 2 && t.DataLocation != TensorProto.Types.DataLocation.External
        && (t.RawData.Length == t.Dims[0] * t.Dims[1] * sizeof(float) || t.RawData.IsEmpty && t.FloatData.Count == t.Dims[0] * t.Dims[1]);

    private static ReadOnlySpan<float> Floats(TensorProto t)
    {
        if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("ONNX raw data is little-endian");
        return t.RawData.IsEmpty ? t.FloatData.ToArray() : MemoryMarshal.Cast<byte, float>(t.RawData.Span);
    }

    private static TensorProto Tensor(string name, int type, byte[] raw, params long[] dims)
    {
        var t = new TensorProto { Name = name, DataType = type, RawData = UnsafeByteOperations.UnsafeWrap(raw) };
        t.Dims.AddRange(dims);
        return t;
    }

    private static NodeProto Node(string op, string name, string[] inputs, string[] outputs, params AttributeProto[] attributes)
    {
        var node = new NodeProto { OpType = op, Name = name };
        node.Input.AddRange(inputs);
        node.Output.AddRange(outputs);
        node.Attribute.AddRange(attributes);
        return node;
    }

    private static string Unique(HashSet<string> names, string name)
    {
        if (names.Add(name)) return name;
        for (int i = 1; ; i++)
            if (names.Add($"{name}_{i}")) return $"{name}_{i}";
    }

    private static void SetMetadata(ModelProto model, string key, string value)
    {
        var entry = model.MetadataProps.FirstOrDefault(p => p.Key == key);
        if (entry is null) model.MetadataProps.Add(new StringStringEntryProto { Key = key, Value = value });
        else entry.Value = value;
    }
}
