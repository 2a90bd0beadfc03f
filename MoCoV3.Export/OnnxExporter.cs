using MoCoV3.IO;
using MoCoV3.Inference;
using System.Globalization;
using System.Text.Json;
using Google.Protobuf;
using MoCoV3.Models;
using Onnx;
using TorchSharp;
using static MoCoV3.Export.OnnxGraphBuilder;

namespace MoCoV3.Export;

/// <summary>
/// Writes a backbone as an ONNX model, node by node from its weights (no tracing). The graph takes
/// <c>input</c> float32 <c>[N, C, H, W]</c> with pixels in [0, 1] (N symbolic), normalises it with the preset's mean and
/// std, and returns <c>embedding</c> float32 <c>[N, D]</c>: for a ViT the class token after the final norm, for a ResNet
/// the global average pool. Only the backbone given is written (export the query encoder's, never the momentum one).
/// </summary>
public static class OnnxExporter
{
    public const int IrVersion = 8;

    /// <summary>Builds the model in memory; the backbone is read, not changed.</summary>
    public static ModelProto Export(Backbone backbone, ModelPreset preset, ExportOptions options)
    {
        ArgumentNullException.ThrowIfNull(backbone);
        ArgumentNullException.ThrowIfNull(preset);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        preset.Validate($"preset '{preset.Name}'");
        if (backbone.FeatureDim <= 0) throw new ArgumentException("backbone has no feature width");
        if (options.Head is { } head && !backbone.AcceptsHead(head.InFeatures))
            throw new ArgumentException($"head takes {head.InFeatures} features, the backbone gives {backbone.FeatureDim}" +
                                        (backbone.EmbeddingDim != backbone.FeatureDim ? $" (embedding {backbone.EmbeddingDim})" : ""));

        var graph = new GraphProto { Name = preset.Name };
        var g = new OnnxGraphBuilder(graph, options.Fp16);
        int c = preset.Input.Channels, size = preset.Input.ImageSize;

        graph.Input.Add(TensorValue(OnnxMetadata.InputName, Float, new Dim(OnnxMetadata.BatchDim), c, size, size));

        // Pixels in [0, 1] -> (x - mean) / std, in float32; then the compute type.
        string x = g.Node("Sub", "normalize",
            [OnnxMetadata.InputName, g.Float32(ConstPrefix + "mean", preset.Input.Mean.Select(v => (float)v).ToArray(), 1, c, 1, 1)]);
        x = g.Node("Div", "normalize", [x, g.Float32(ConstPrefix + "std", preset.Input.Std.Select(v => (float)v).ToArray(), 1, c, 1, 1)]);
        if (options.Fp16) x = g.Node("Cast", "to_fp16", [x], Attr("to", (long)Float16));

        string embedding, features;
        using (torch.no_grad())
        {
            var weights = new BackboneWeights(backbone);
            (features, embedding) = backbone switch
            {
                VisionTransformer when preset.IsVit => VitGraph.Emit(g, weights, preset, x),
                ResNet when !preset.IsVit => Same(ResNetGraph.Emit(g, weights, preset, x)),
                _ => throw new ArgumentException($"cannot export a {backbone.GetType().Name} as preset '{preset.Name}' (arch {preset.Arch.Name()})"),
            };
        }
        static (string, string) Same(string output) => (output, output);

        long d = backbone.EmbeddingDim;
        Output(g, embedding, OnnxMetadata.EmbeddingName, d);
        if (options.Head is { } h)
        {
            var transposed = new float[h.Weight.Length];
            for (int k = 0; k < h.Classes; k++)
                for (int j = 0; j < h.InFeatures; j++)
                    transposed[(long)j * h.Classes + k] = h.Weight[(long)k * h.InFeatures + j];
            // The head reads the feature (class token / pool) or, when it is that wide, the embedding (as Backbone.HeadInput).
            string input = h.InFeatures == backbone.FeatureDim ? features : embedding;
            string logits = g.Node("Add", "head",
                [g.Node("MatMul", "head", [input, g.Weight("head.weight_t", transposed, h.InFeatures, h.Classes)]),
                 g.Weight("head.bias", h.Bias, h.Classes)]);
            Output(g, logits, OnnxMetadata.LogitsName, h.Classes);
        }

        var model = new ModelProto
        {
            IrVersion = IrVersion,
            ProducerName = OnnxMetadata.Producer,
            ProducerVersion = typeof(OnnxExporter).Assembly.GetName().Version?.ToString() ?? "",
            DocString = $"MoCo v3 backbone '{preset.Name}' ({preset.Arch.Name()}): input [N,{c},{size},{size}] pixels in [0,1], output embedding [N,{d}]",
            Graph = graph,
        };
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = options.Opset });
        AddMetadata(model, preset, options, d);
        return model;
    }

    /// <summary>Exports and saves in one go, honouring <see cref="ExportOptions.ExternalDataThresholdBytes"/>.</summary>
    public static ModelProto ExportToFile(Backbone backbone, ModelPreset preset, ExportOptions options, string path)
    {
        var model = Export(backbone, preset, options);
        Save(model, path, options.ExternalDataThresholdBytes);
        return model;
    }

    /// <summary>
    /// Writes the model atomically (temporary file, then rename). When its initializers hold more than
    /// <paramref name="externalDataThresholdBytes"/> bytes, they go to <c>{path}.data</c> as ONNX external data and the
    /// .onnx keeps the graph; keep the two files in the same folder. The model in memory is not changed.
    /// </summary>
    public static void Save(ModelProto model, string path, long externalDataThresholdBytes = ExportOptions.DefaultExternalDataThresholdBytes)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentException.ThrowIfNullOrEmpty(path);
        string? folder = Path.GetDirectoryName(Path.GetFullPath(path));
        if (folder is not null) Directory.CreateDirectory(folder);

        long initializerBytes = model.Graph.Initializer.Sum(t => (long)t.RawData.Length);
        string dataPath = ExternalData.PathFor(path);
        var toWrite = model;
        if (initializerBytes > externalDataThresholdBytes)
            toWrite = ExternalData.Write(model, dataPath);
        else if (File.Exists(dataPath))
            File.Delete(dataPath); // a side file of an earlier, bigger export of the same name

        DurableFile.Write(path, OnnxDigest.Seal(toWrite, folder).WriteTo); // mocov3.digest, checked on load
    }

    private static void Output(OnnxGraphBuilder g, string value, string name, long width)
    {
        string source = g.Fp16 ? g.Node("Cast", $"{name}.to_fp32", [value], Attr("to", (long)Float)) : value;
        g.Graph.Node.Add(new NodeProto { OpType = "Identity", Name = $"{name}/Identity", Input = { source }, Output = { name } });
        g.Graph.Output.Add(TensorValue(name, Float, new Dim(OnnxMetadata.BatchDim), width));
    }

    private readonly record struct Dim(string? Param, long Value = 0)
    {
        public static implicit operator Dim(long value) => new(null, value);
        public static implicit operator Dim(int value) => new(null, value);
    }

    private static ValueInfoProto TensorValue(string name, int elemType, params Dim[] dims)
    {
        var shape = new TensorShapeProto();
        foreach (var dim in dims)
            shape.Dim.Add(dim.Param is null
                ? new TensorShapeProto.Types.Dimension { DimValue = dim.Value }
                : new TensorShapeProto.Types.Dimension { DimParam = dim.Param });
        return new ValueInfoProto
        {
            Name = name,
            Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = elemType, Shape = shape } },
        };
    }

    private static void AddMetadata(ModelProto model, ModelPreset preset, ExportOptions options, long embeddingDim)
    {
        static string Numbers(IEnumerable<double> values) => string.Join(",", values.Select(v => v.ToString("R", CultureInfo.InvariantCulture)));
        var entries = new List<(string, string)>
        {
            (OnnxMetadata.Arch, preset.Arch.Name()),
            (OnnxMetadata.Preset, JsonSerializer.Serialize(preset, ModelPreset.Json)),
            (OnnxMetadata.InputSize, preset.Input.ImageSize.ToString(CultureInfo.InvariantCulture)),
            (OnnxMetadata.Channels, preset.Input.Channels.ToString(CultureInfo.InvariantCulture)),
            (OnnxMetadata.Mean, Numbers(preset.Input.Mean)),
            (OnnxMetadata.Std, Numbers(preset.Input.Std)),
            (OnnxMetadata.EmbeddingDim, embeddingDim.ToString(CultureInfo.InvariantCulture)),
            (OnnxMetadata.Embedding, preset.IsVit ? preset.Backbone.Embedding : "pool"),
            (OnnxMetadata.Recipe, options.Recipe ?? DefaultRecipe(preset)),
            (OnnxMetadata.Precision, options.Fp16 ? "fp16" : "fp32"),
        };
        if (options.Head is { } head) entries.Add((OnnxMetadata.HeadClasses, head.Classes.ToString(CultureInfo.InvariantCulture)));
        if (options.ClassNames is { } names) entries.Add((OnnxMetadata.ClassNames, JsonSerializer.Serialize(names)));
        foreach (var (key, value) in options.ExtraMetadata ?? new Dictionary<string, string>())
        {
            if (entries.Any(e => e.Item1 == key))
                throw new ArgumentException($"extra metadata may not override '{key}'");
            entries.Add((key, value));
        }
        foreach (var (key, value) in entries)
            model.MetadataProps.Add(new StringStringEntryProto { Key = key, Value = value });
    }

    /// <summary>One line describing the pretraining recipe of the preset.</summary>
    public static string DefaultRecipe(ModelPreset preset) => string.Create(CultureInfo.InvariantCulture,
        $"MoCo v3, τ={preset.Recipe.Temperature}, optimizer {preset.Recipe.Optimizer.Name()}, base_lr {preset.Recipe.BaseLr} (x batch/256), " +
        $"weight_decay {preset.Recipe.WeightDecay}, batch {preset.Recipe.Batch}, epochs {preset.Recipe.Epochs} (warmup {preset.Recipe.WarmupEpochs}), " +
        $"momentum {preset.Recipe.Momentum0}→1 (cosine), crop_min {preset.Recipe.CropMin}, projector {preset.Heads.ProjectorLayers}x{preset.Heads.HiddenDim}→{preset.Heads.OutDim}, " +
        $"predictor {preset.Heads.PredictorLayers} layers");
}
