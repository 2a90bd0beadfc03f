using System.Collections;
using MoCoV3.Checkpoints;
using MoCoV3.Method;
using MoCoV3.Models;
using static TorchSharp.torch;

namespace MoCoV3.Checkpoints;

/// <summary>
/// Loads the backbone (query encoder) of a checkpoint in any known layout into one of our backbones, strictly:
/// every backbone tensor of the preset must be present with its shape, and every key of the checkpoint must be
/// either a backbone tensor or a known other part (projector, predictor, momentum encoder, classifier head),
/// which is reported as skipped. Anything else refuses the whole import, naming the keys and shapes; nothing is
/// half-loaded. torch.save and safetensors files are read alike: the container is told by the file's first bytes,
/// the layout by its keys.
/// </summary>
public static class CheckpointImporter
{
    /// <summary>Imports with the shipped presets as the candidates for <paramref name="arch"/> detection.</summary>
    /// <param name="path">A <c>torch.save</c> file, a <c>.safetensors</c> file or a toolkit checkpoint.</param>
    /// <param name="format">The layout, or null to detect it from the file and its keys.</param>
    /// <param name="arch">The preset to build, or null to pick the shipped preset whose shapes match.</param>
    public static ImportedBackbone Load(string path, CheckpointFormat? format, ModelPreset? arch) =>
        Load(path, format, arch, presets: null);

    /// <param name="presets">Candidates for architecture detection (default: <see cref="PresetCatalog.All"/>).</param>
    public static ImportedBackbone Load(string path, CheckpointFormat? format, ModelPreset? arch, IEnumerable<ModelPreset>? presets)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: checkpoint not found", path);
        bool toolkit = CheckpointFile.IsCheckpoint(path);
        if (format == CheckpointFormat.Toolkit && !toolkit)
            throw new InvalidDataException($"{path}: not a MoCoV3.NET checkpoint (no MOCOV3CK magic), but the format was given as toolkit");
        if (toolkit && format is not null and not CheckpointFormat.Toolkit)
            throw new InvalidDataException($"{path}: a MoCoV3.NET checkpoint, but the format was given as {format}");
        if (toolkit) return LoadToolkit(path, arch, presets);
        return SafeTensorsFile.LooksLikeSafeTensors(path) ? LoadSafeTensors(path, format, arch, presets) : LoadPyTorch(path, format, arch, presets);
    }

    private static ImportedBackbone LoadToolkit(string path, ModelPreset? arch, IEnumerable<ModelPreset>? presets)
    {
        var header = CheckpointFile.ReadHeader(path);
        using var moco = new MoCo(header.Preset, BackboneFactory.Create);
        CheckpointFile.Load(path, moco, optimizer: null);
        var notes = new List<string> { $"checkpoint of preset '{header.Preset.Name}' at step {header.Step}" };
        return FromStateDict(path, moco.state_dict(), ToolkitKeyLayout.Instance, "", arch ?? header.Preset, presets, notes, CheckpointContainer.Toolkit);
    }

    private static ImportedBackbone LoadPyTorch(string path, CheckpointFormat? format, ModelPreset? arch, IEnumerable<ModelPreset>? presets)
    {
        var root = PyTorchFile.Read(path);
        try
        {
            var dict = PyTorchFile.FindStateDict(root, out string wrapper);
            var tensors = new Dictionary<string, Tensor>(StringComparer.Ordinal);
            var others = new List<string>();
            foreach (DictionaryEntry entry in dict)
            {
                if (entry.Key is string key && entry.Value is Tensor t) tensors[key] = t;
                else others.Add(entry.Key?.ToString() ?? "?");
            }
            return FromNamedTensors(path, tensors, others, wrapper, format, arch, presets, [], CheckpointContainer.TorchSave);
        }
        finally
        {
            PyTorchFile.DisposeTensors(root);
        }
    }

    /// <summary>
    /// A safetensors file: its keys tell the layout as for a torch.save file. A file this toolkit wrote names its preset in
    /// <c>__metadata__</c> (<see cref="SafeTensorsContent.PresetKey"/>), which then is the one candidate of the architecture
    /// detection: it is used only when the tensors' shapes describe it (so a preset in a damaged file cannot ask for a model
    /// larger than the file), and the strict check of every name and shape still follows. <c>--arch</c> overrides it.
    /// </summary>
    private static ImportedBackbone LoadSafeTensors(string path, CheckpointFormat? format, ModelPreset? arch, IEnumerable<ModelPreset>? presets)
    {
        using var content = SafeTensorsFile.Read(path);
        var notes = new List<string>();
        if (arch is null && content.Metadata.TryGetValue(SafeTensorsContent.PresetKey, out string? json))
        {
            using var stream = new MemoryStream(System.Text.Encoding.UTF8.GetBytes(json));
            var own = PresetCatalog.Load(stream, $"{path} (__metadata__ {SafeTensorsContent.PresetKey})");
            presets = [own];
            notes.Add($"preset '{own.Name}' from the file's metadata");
        }
        var tensors = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (var (key, value) in content.Tensors) tensors[key] = value;
        return FromNamedTensors(path, tensors, [], "", format, arch, presets, notes, CheckpointContainer.SafeTensors);
    }

    /// <summary>The tensors of a torch.save or safetensors file: the layout is the one given, or the one its keys show.</summary>
    private static ImportedBackbone FromNamedTensors(string path, Dictionary<string, Tensor> tensors, List<string> others, string wrapper,
                                                    CheckpointFormat? format, ModelPreset? arch, IEnumerable<ModelPreset>? presets,
                                                    List<string> notes, CheckpointContainer container)
    {
        if (tensors.Count == 0)
            throw new InvalidDataException($"{path}: holds no tensors{(wrapper.Length > 0 ? $" under '{wrapper}'" : "")} " +
                                           $"(keys: {string.Join(", ", others.Take(10))})");
        var detected = KeyLayout.Detect(tensors.Keys);
        var chosen = format ?? detected ?? throw new InvalidDataException(
            $"{path}: cannot tell the checkpoint layout from its keys ({string.Join(", ", tensors.Keys.Order(StringComparer.Ordinal).Take(8))}" +
            $"{(tensors.Count > 8 ? ", …" : "")}); pass --from official|mmselfsup|timm|torchvision");
        if (format is not null && detected is not null && detected != format)
            notes.Add($"the keys look like {detected}, read as {format} as asked");
        if (others.Count > 0) notes.Add($"ignored {others.Count} non-tensor entries ({string.Join(", ", others.Take(5))})");
        return FromStateDict(path, tensors, KeyLayout.For(chosen), wrapper, arch, presets, notes, container);
    }

    private static ImportedBackbone FromStateDict(string path, IReadOnlyDictionary<string, Tensor> tensors, KeyLayout layout, string wrapper,
                                                  ModelPreset? arch, IEnumerable<ModelPreset>? presets, List<string> notes,
                                                  CheckpointContainer container)
    {
        var backbone = new Dictionary<string, (string Key, Tensor Value)>(StringComparer.Ordinal);
        var head = new Dictionary<string, (string Key, Tensor Value)>(StringComparer.Ordinal);
        var skipped = new List<SkippedKey>();
        var problems = new List<string>();
        foreach (var (key, value) in tensors.OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            var mapped = layout.Map(key);
            var into = mapped.Part switch
            {
                CheckpointPart.Backbone => backbone,
                CheckpointPart.ClassifierHead => head,
                _ => null,
            };
            if (into is null) skipped.Add(new SkippedKey(key, mapped.Part));
            else if (!into.TryAdd(mapped.Name, (key, value)))
                problems.Add($"{key} and {into[mapped.Name].Key} both map to {mapped.Name}");
        }

        var preset = arch ?? ArchitectureDetector.Detect(backbone.ToDictionary(kv => kv.Key, kv => kv.Value.Value.shape), presets ?? PresetCatalog.All(), path);
        var model = BackboneFactory.Create(preset);
        try
        {
            var target = model.state_dict();
            var load = StrictStateDictLoad.Compare(target, backbone, _ => true, layout.FromBackbone, $"preset '{preset.Name}' expects");
            if (head.Count > 0) CheckHead(head, model, problems);
            problems.AddRange(load.Problems());
            if (problems.Count > 0)
            {
                throw new InvalidDataException(
                    $"{path}: this {layout.Format} checkpoint does not fit preset '{preset.Name}' " +
                    $"({load.Found} of {target.Count} backbone tensors found by name; {load.Counts}); nothing was loaded:\n  " +
                    string.Join("\n  ", problems));
            }
            var nonFinite = load.CopyIntoModel();
            if (load.MissingCounters.Count > 0) notes.Add($"no BatchNorm num_batches_tracked counters in the checkpoint ({load.MissingCounters.Count}); left at 0");
            var dtypes = backbone.Values.Select(v => v.Value.dtype).Where(d => d != ScalarType.Float32 && d != ScalarType.Int64).Distinct().ToList();
            if (dtypes.Count > 0) notes.Add($"converted {string.Join(", ", dtypes)} tensors to float32");
            if (nonFinite.Count > 0)
                notes.Add($"warning: {nonFinite.Count} tensors hold NaN or infinity ({string.Join(", ", nonFinite.Take(5))}): the run that wrote this checkpoint may have diverged");
            if (head.TryGetValue("weight", out var hw))
                notes.Add($"classifier head {hw.Key} {Shape(hw.Value.shape)}: {hw.Value.shape[0]} classes, kept beside the backbone");
            if (preset.IsVit)
                notes.Add($"attention heads: {preset.Vit.Heads}, from preset '{preset.Name}' (weights do not record them; moco-v3's ViT-S uses 12, timm's vit_small 6)");
            model.eval();
            return new ImportedBackbone
            {
                Preset = preset,
                Backbone = model,
                Format = layout.Format,
                Head = head.Count > 0 ? new ClassifierHead(Copy(head["weight"].Value), head.TryGetValue("bias", out var b) ? Copy(b.Value) : null) : null,
                Report = new ImportReport
                {
                    Source = path,
                    Format = layout.Format,
                    Container = container,
                    Wrapper = wrapper,
                    Loaded = backbone.Keys.ToList(),
                    Skipped = skipped,
                    Notes = notes,
                },
            };
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    private static void CheckHead(Dictionary<string, (string Key, Tensor Value)> head, Backbone model, List<string> problems)
    {
        if (!head.TryGetValue("weight", out var w))
        {
            problems.Add($"classifier head: {head.Values.First().Key} without a weight");
            return;
        }
        if (w.Value.dim() != 2 || !model.AcceptsHead(w.Value.shape[1]))
            problems.Add($"mis-shaped: classifier {w.Key}: checkpoint {Shape(w.Value.shape)}, backbone gives {model.FeatureDim} features" +
                         (model.EmbeddingDim != model.FeatureDim ? $" (embedding {model.EmbeddingDim})" : ""));
        if (head.TryGetValue("bias", out var b) && (b.Value.dim() != 1 || b.Value.shape[0] != w.Value.shape[0]))
            problems.Add($"mis-shaped: classifier {b.Key}: checkpoint {Shape(b.Value.shape)}, weight has {w.Value.shape[0]} rows");
    }

    private static Tensor Copy(Tensor t)
    {
        using var scope = NewDisposeScope();
        return t.detach().to(ScalarType.Float32).clone().MoveToOuterDisposeScope();
    }

    private static string Shape(long[] shape) => StrictStateDictLoad.Shape(shape);

}
