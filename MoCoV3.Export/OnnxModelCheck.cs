using Onnx;

namespace MoCoV3.Export;

/// <summary>
/// A structural check of a model, in C#: an <c>ai.onnx</c> opset import and an IR version; unique initializer and
/// value names; every node input produced by an earlier node, an initializer or a graph input (so the nodes are
/// in topological order); every graph output produced; inline initializers holding exactly the bytes their shape
/// and type need; external ones naming location, offset and length.
/// </summary>
public static class OnnxModelCheck
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

    private static void CheckTensor(TensorProto tensor, List<string> problems)
    {
        long count = tensor.Dims.Aggregate(1L, (a, d) => a * d);
        if (tensor.Dims.Any(d => d < 0)) problems.Add($"initializer '{tensor.Name}' has a negative dimension");
        if (tensor.DataLocation == TensorProto.Types.DataLocation.External)
        {
            var keys = tensor.ExternalData.Select(e => e.Key).ToHashSet(StringComparer.Ordinal);
            foreach (var key in new[] { "location", "offset", "length" })
                if (!keys.Contains(key)) problems.Add($"external initializer '{tensor.Name}' has no '{key}'");
            return;
        }
        int size = tensor.DataType switch
        {
            (int)TensorProto.Types.DataType.Float => 4,
            (int)TensorProto.Types.DataType.Float16 => 2,
            (int)TensorProto.Types.DataType.Int64 => 8,
            (int)TensorProto.Types.DataType.Int8 => 1,
            _ => 0,
        };
        if (size == 0)
        {
            problems.Add($"initializer '{tensor.Name}' has data type {tensor.DataType}, which this exporter never writes");
            return;
        }
        if (tensor.RawData.Length != count * size)
            problems.Add($"initializer '{tensor.Name}' holds {tensor.RawData.Length} bytes, its shape needs {count * size}");
    }
}
