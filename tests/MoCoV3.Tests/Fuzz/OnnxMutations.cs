using Google.Protobuf;
using Onnx;

namespace MoCoV3.Tests.Fuzz;

/// <summary>
/// Mutations of an ONNX model that keep the protobuf valid, so that they reach the model checks and ONNX Runtime's
/// graph loading: initializer shapes, types and bytes; node operators, inputs and attributes; the input's shape;
/// opset and IR versions; external-data references outside the model's folder or past the data file.
/// </summary>
internal static class OnnxMutations
{
    private static readonly long[] InterestingDims = [0, -1, 1, 2, 3, 1000000, 1L << 31, 1L << 40, long.MaxValue];

    private static readonly long[] InterestingInts = [-100, -1, 0, 1, 2, 3, 5, 100, int.MaxValue, long.MinValue];

    public static byte[] Mutate(byte[] bytes, Random random, List<string> log)
    {
        var model = ModelProto.Parser.ParseFrom(bytes);
        var graph = model.Graph;
        int count = 1 + random.Next(2);
        for (int i = 0; i < count; i++)
            MutateOnce(model, graph, random, log);
        return model.ToByteArray();
    }

    /// <summary>Mutates the JSON of the <c>mocov3.digest</c> entry (values, types, keys), the rest of the model intact.</summary>
    public static byte[] MutateDigest(byte[] bytes, Random random, List<string> log)
    {
        var model = ModelProto.Parser.ParseFrom(bytes);
        var digest = model.MetadataProps.Single(p => p.Key == MoCoV3.Inference.OnnxMetadata.Digest);
        digest.Value = System.Text.Encoding.UTF8.GetString(StructuredMutations.Json(System.Text.Encoding.UTF8.GetBytes(digest.Value), random, log));
        if (random.Next(4) == 0)
        {
            model.MetadataProps.Add(digest.Clone());
            log.Add("digest entry twice");
        }
        return model.ToByteArray();
    }

    private static void MutateOnce(ModelProto model, GraphProto graph, Random random, List<string> log)
    {
        T Pick<T>(IList<T> items) => items[random.Next(items.Count)];
        switch (random.Next(12))
        {
            case 0 when graph.Initializer.Count > 0:
                {
                    var t = Pick(graph.Initializer);
                    if (t.Dims.Count == 0) t.Dims.Add(1);
                    int d = random.Next(t.Dims.Count);
                    t.Dims[d] = Pick(InterestingDims);
                    log.Add($"initializer {t.Name} dim {d} := {t.Dims[d]}");
                    break;
                }
            case 1 when graph.Initializer.Count > 0:
                {
                    var t = Pick(graph.Initializer);
                    int keep = random.Next(t.RawData.Length + 1);
                    t.RawData = ByteString.CopyFrom(t.RawData.Span[..keep]);
                    log.Add($"initializer {t.Name} raw_data cut to {keep} bytes");
                    break;
                }
            case 2 when graph.Initializer.Count > 0:
                {
                    var t = Pick(graph.Initializer);
                    t.DataType = random.Next(0, 24);
                    log.Add($"initializer {t.Name} data_type := {t.DataType}");
                    break;
                }
            case 3 when graph.Node.Count > 1:
                {
                    var n = Pick(graph.Node);
                    n.OpType = Pick(graph.Node).OpType;
                    log.Add($"node {n.Name} op_type := {n.OpType}");
                    break;
                }
            case 4 when graph.Node.Count > 1:
                {
                    var n = Pick(graph.Node);
                    if (n.Input.Count == 0) break;
                    var names = graph.Node.SelectMany(x => x.Output).Concat(graph.Initializer.Select(x => x.Name)).ToList();
                    int k = random.Next(n.Input.Count);
                    n.Input[k] = Pick(names);
                    log.Add($"node {n.Name} input {k} := {n.Input[k]}");
                    break;
                }
            case 5 when graph.Node.Any(n => n.Attribute.Count > 0):
                {
                    var n = Pick(graph.Node.Where(x => x.Attribute.Count > 0).ToList());
                    var a = Pick(n.Attribute);
                    long value = Pick(InterestingInts);
                    if (a.Ints.Count > 0) a.Ints[random.Next(a.Ints.Count)] = value;
                    else if (a.Floats.Count > 0) a.Floats[random.Next(a.Floats.Count)] = value;
                    else if (a.Type == AttributeProto.Types.AttributeType.Float) a.F = value;
                    else a.I = value;
                    log.Add($"node {n.Name} attribute {a.Name} := {value}");
                    break;
                }
            case 6 when graph.Node.Count > 1:
                {
                    int k = random.Next(graph.Node.Count);
                    log.Add($"remove node {graph.Node[k].Name}");
                    graph.Node.RemoveAt(k);
                    break;
                }
            case 7 when graph.Input.Count > 0:
                {
                    var dims = graph.Input[0].Type.TensorType.Shape.Dim;
                    int k = random.Next(dims.Count);
                    dims[k].DimValue = Pick(InterestingDims);
                    log.Add($"input dim {k} := {dims[k].DimValue}");
                    break;
                }
            case 8:
                {
                    var opset = model.OpsetImport.First();
                    opset.Version = Pick(new long[] { 0, 1, 7, 12, 99, long.MaxValue });
                    log.Add($"opset := {opset.Version}");
                    break;
                }
            case 9 when graph.Initializer.Count > 0:
                {
                    var t = Pick(graph.Initializer);
                    t.RawData = ByteString.Empty;
                    t.DataLocation = TensorProto.Types.DataLocation.External;
                    string location = Pick(new[] { "../../../etc/passwd", "/etc/passwd", "missing.bin", "", "case0-encoder.onnx" });
                    string offset = Pick(new[] { "0", "-1", "99999999999", "x" });
                    t.ExternalData.Add(new StringStringEntryProto { Key = "location", Value = location });
                    t.ExternalData.Add(new StringStringEntryProto { Key = "offset", Value = offset });
                    t.ExternalData.Add(new StringStringEntryProto { Key = "length", Value = "64" });
                    log.Add($"initializer {t.Name} external at '{location}' offset {offset}");
                    break;
                }
            case 10:
                model.IrVersion = Pick(new long[] { 0, 1, 3, 100 });
                log.Add($"ir_version := {model.IrVersion}");
                break;
            case 11 when graph.Node.Count > 0:
                {
                    var n = Pick(graph.Node);
                    graph.Node.Insert(random.Next(graph.Node.Count + 1), n.Clone());
                    log.Add($"duplicate node {n.Name}");
                    break;
                }
            default:
                log.Add("no structural change");
                break;
        }
    }
}
