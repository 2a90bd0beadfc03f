using System.Runtime.InteropServices;
using Google.Protobuf;
using Onnx;

namespace MoCoV3.Export;

/// <summary>
/// Appends nodes and initializers to an ONNX <see cref="GraphProto"/> in topological order. Weights are written in
/// the compute type (float32, or float16 when <c>fp16</c>); shape constants are int64; values are named after
/// the node that makes them (<c>name/Op</c>), so a graph reads like the module tree.
/// </summary>
internal sealed class OnnxGraphBuilder
{
    public const int Float = (int)TensorProto.Types.DataType.Float;
    public const int Float16 = (int)TensorProto.Types.DataType.Float16;
    public const int Int64 = (int)TensorProto.Types.DataType.Int64;

    /// <summary>Prefix of initializers that are not weights of the backbone (normalisation, shapes, scalars).</summary>
    public const string ConstPrefix = "const.";

    private readonly HashSet<string> names = new(StringComparer.Ordinal);

    public OnnxGraphBuilder(GraphProto graph, bool fp16)
    {
        Graph = graph;
        Fp16 = fp16;
    }

    public GraphProto Graph { get; }

    public bool Fp16 { get; }

    /// <summary>The element type of activations and weights.</summary>
    public int ComputeType => Fp16 ? Float16 : Float;

    /// <summary>Adds one node with one output, named <c>{name}/{op}</c> (made unique), and returns that output.</summary>
    public string Node(string op, string name, IEnumerable<string> inputs, params AttributeProto[] attributes) =>
        NodeOutputs(op, name, inputs, 1, attributes)[0];

    /// <summary>Adds one node with <paramref name="outputs"/> outputs and returns their names.</summary>
    public string[] NodeOutputs(string op, string name, IEnumerable<string> inputs, int outputs, params AttributeProto[] attributes)
    {
        string nodeName = Unique($"{name}/{op}");
        var node = new NodeProto { OpType = op, Name = nodeName };
        node.Input.AddRange(inputs);
        var outs = new string[outputs];
        for (int i = 0; i < outputs; i++)
        {
            outs[i] = outputs == 1 ? nodeName : $"{nodeName}:{i}";
            node.Output.Add(outs[i]);
        }
        node.Attribute.AddRange(attributes);
        Graph.Node.Add(node);
        return outs;
    }

    /// <summary>A weight in the compute type.</summary>
    public string Weight(string name, float[] data, params long[] dims) =>
        AddTensor(name, Fp16 ? Float16 : Float, Fp16 ? HalfBytes(data) : FloatBytes(data), data.LongLength, dims);

    /// <summary>A float32 tensor, whatever the compute type (used before the input Cast).</summary>
    public string Float32(string name, float[] data, params long[] dims) =>
        AddTensor(name, Float, FloatBytes(data), data.LongLength, dims);

    /// <summary>A scalar in the compute type, named <c>const.{name}</c>.</summary>
    public string Scalar(string name, float value) => Weight(ConstPrefix + name, [value]);

    /// <summary>An int64 tensor, named <c>const.{name}</c> (shapes, indices).</summary>
    public string Int64s(string name, long[] data, params long[] dims)
    {
        var bytes = new byte[data.Length * sizeof(long)];
        MemoryMarshal.AsBytes(data.AsSpan()).CopyTo(bytes);
        return AddTensor(ConstPrefix + name, Int64, bytes, data.LongLength, dims);
    }

    /// <summary>An int64 scalar (rank 0), e.g. a Gather index that drops the axis.</summary>
    public string Int64Scalar(string name, long value) => Int64s(name, [value]);

    public static AttributeProto Attr(string name, long value) =>
        new() { Name = name, Type = AttributeProto.Types.AttributeType.Int, I = value };

    public static AttributeProto Attr(string name, float value) =>
        new() { Name = name, Type = AttributeProto.Types.AttributeType.Float, F = value };

    public static AttributeProto Attr(string name, params long[] values)
    {
        var a = new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Ints };
        a.Ints.AddRange(values);
        return a;
    }

    private string AddTensor(string name, int dataType, byte[] raw, long count, long[] dims)
    {
        long expected = dims.Aggregate(1L, (a, d) => a * d);
        if (expected != count)
            throw new InvalidOperationException($"initializer {name}: {count} values do not fill shape [{string.Join(",", dims)}]");
        if (!names.Add(name)) throw new InvalidOperationException($"duplicate initializer name {name}");
        var tensor = new TensorProto { Name = name, DataType = dataType, RawData = UnsafeByteOperations.UnsafeWrap(raw) };
        tensor.Dims.AddRange(dims);
        Graph.Initializer.Add(tensor);
        return name;
    }

    private string Unique(string name)
    {
        if (names.Add(name)) return name;
        for (int i = 1; ; i++)
        {
            string candidate = $"{name}_{i}";
            if (names.Add(candidate)) return candidate;
        }
    }

    private static byte[] FloatBytes(float[] data)
    {
        if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("ONNX raw data is little-endian");
        var bytes = new byte[data.LongLength * sizeof(float)];
        MemoryMarshal.AsBytes(data.AsSpan()).CopyTo(bytes);
        return bytes;
    }

    private static byte[] HalfBytes(float[] data)
    {
        if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("ONNX raw data is little-endian");
        var halves = new Half[data.Length];
        for (int i = 0; i < data.Length; i++) halves[i] = (Half)data[i];
        var bytes = new byte[halves.LongLength * 2];
        MemoryMarshal.AsBytes(halves.AsSpan()).CopyTo(bytes);
        return bytes;
    }
}
