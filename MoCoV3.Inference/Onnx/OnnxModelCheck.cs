using Onnx;

namespace MoCoV3.Inference;

/// <summary>
/// A structural check of a model, in C#: an <c>ai.onnx</c> opset import and an IR version; unique initializer and
/// value names; every node input produced by an earlier node, an initializer or a graph input (so the nodes are
/// in topological order); every graph output produced; inline initializers holding exactly the bytes their shape
/// and type need (or as many typed values); external ones naming location, offset and length.
/// </summary>
internal static class OnnxModelCheck
{
    /// <summary>The problems found, empty when none.</summary>
    public static IReadOnlyList<string> Problems(ModelProto model)
    {
        ArgumentNullException.ThrowIfNull(model);
        var problems = new List<string>();
        if (model.IrVersion <= 0) problems.Add("ir_version is not set");
        if (!model.OpsetImport.Any(o => (o.Domain is "" or "ai.onnx") && o.Version > 0)) problems.Add("no ai.onnx opset import");
        var graph = model.Graph;
        if (graph is null)
        {
            problems.Add("no graph");
            return problems;
        }

        var defined = new HashSet<string>(StringComparer.Ordinal);
        foreach (var input in graph.Input)
            if (!defined.Add(input.Name)) problems.Add($"graph input '{input.Name}' is defined twice");
        foreach (var tensor in graph.Initializer)
        {
            if (!defined.Add(tensor.Name)) problems.Add($"initializer '{tensor.Name}' is defined twice");
            CheckTensor(tensor, problems);
        }
        foreach (var node in graph.Node)
        {
            if (string.IsNullOrEmpty(node.OpType)) problems.Add($"node '{node.Name}' has no op_type");
            foreach (var input in node.Input)
                if (input.Length > 0 && !defined.Contains(input))
                    problems.Add($"node '{node.Name}' ({node.OpType}) reads '{input}', which nothing before it produces");
            foreach (var output in node.Output)
                if (output.Length > 0 && !defined.Add(output))
                    problems.Add($"node '{node.Name}' ({node.OpType}) writes '{output}', which is already defined");
        }
        if (graph.Output.Count == 0) problems.Add("the graph has no outputs");
        foreach (var output in graph.Output)
            if (!defined.Contains(output.Name)) problems.Add($"graph output '{output.Name}' is never produced");
        return problems;
    }

    /// <summary>Bytes per element of the data types whose size is fixed; 0 for the others (strings, 4-bit types).</summary>
    internal static int ElementSize(int dataType) => (TensorProto.Types.DataType)dataType switch
    {
        TensorProto.Types.DataType.Float or TensorProto.Types.DataType.Int32 or TensorProto.Types.DataType.Uint32 => 4,
        TensorProto.Types.DataType.Double or TensorProto.Types.DataType.Int64 or TensorProto.Types.DataType.Uint64 => 8,
        TensorProto.Types.DataType.Float16 or TensorProto.Types.DataType.Bfloat16 or TensorProto.Types.DataType.Int16
            or TensorProto.Types.DataType.Uint16 => 2,
        TensorProto.Types.DataType.Int8 or TensorProto.Types.DataType.Uint8 or TensorProto.Types.DataType.Bool => 1,
        _ => 0,
    };

    /// <summary>
    /// The element count of <paramref name="tensor"/>'s shape, or null with a problem added when a dimension is negative
    /// or the product passes <see cref="int.MaxValue"/> (no real initializer is that large; the product could overflow).
    /// </summary>
    internal static long? ElementCount(TensorProto tensor, List<string> problems)
    {
        long count = 1;
        foreach (long d in tensor.Dims)
        {
            if (d < 0)
            {
                problems.Add($"initializer '{tensor.Name}' has a negative dimension ({d})");
                return null;
            }
            if (d > 0 && count > int.MaxValue / d)
            {
                problems.Add($"initializer '{tensor.Name}' has the shape [{string.Join(",", tensor.Dims)}], more than {int.MaxValue} elements");
                return null;
            }
            count *= d;
        }
        return count;
    }

    private static void CheckTensor(TensorProto tensor, List<string> problems)
    {
        if (ElementCount(tensor, problems) is not long count) return;
        if (tensor.DataLocation == TensorProto.Types.DataLocation.External)
        {
            var keys = tensor.ExternalData.Select(e => e.Key).ToHashSet(StringComparer.Ordinal);
            foreach (var key in new[] { "location", "offset", "length" })
                if (!keys.Contains(key)) problems.Add($"external initializer '{tensor.Name}' has no '{key}'");
            return;
        }
        int size = ElementSize(tensor.DataType);
        if (size == 0)
        {
            problems.Add($"initializer '{tensor.Name}' has data type {tensor.DataType}, which this toolkit does not read");
            return;
        }
        if (tensor.RawData.Length > 0 || TypedValueCount(tensor) == 0)
        {
            if (tensor.RawData.Length != count * size)
                problems.Add($"initializer '{tensor.Name}' holds {tensor.RawData.Length} bytes, its shape needs {count * size}");
        }
        else if (TypedValueCount(tensor) != count)
        {
            problems.Add($"initializer '{tensor.Name}' holds {TypedValueCount(tensor)} values, its shape needs {count}");
        }
    }

    /// <summary>Values stored in the typed fields rather than raw_data (16-bit and smaller types pack into int32_data).</summary>
    private static long TypedValueCount(TensorProto tensor) =>
        (long)tensor.FloatData.Count + tensor.Int32Data.Count + tensor.Int64Data.Count + tensor.DoubleData.Count + tensor.Uint64Data.Count;
}
