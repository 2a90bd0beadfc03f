using System.Collections;
using MoCoV3.Method;
using static TorchSharp.torch;

namespace MoCoV3.Checkpoints;

/// <summary>
/// <c>--init</c>: starts a run from the weights of a checkpoint of this toolkit, or of a <c>torch.save</c> or
/// <c>.safetensors</c> file whose layout its keys tell (<see cref="KeyLayout.Detect"/>): the official moco-v3 layout
/// (<c>{'state_dict': {'module.base_encoder.…', 'module.momentum_encoder.…', 'module.predictor.…'}}</c>) or the toolkit's
/// MoCo names load every tensor; a backbone-only layout (timm, torchvision, MMSelfSup) loads the backbone into both
/// encoders and leaves the projector and predictor as initialised (a classifier head or projector in the file is skipped).
/// Keys and shapes are checked: a missing, unexpected or mis-shaped tensor is reported by name, and a checkpoint whose
/// tensors do not fit the model is refused rather than half-loaded.
/// </summary>
public static class InitialWeights
{
    public static void Load(string path, MoCo model, Action<string>? info)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: --init checkpoint not found", path);
        if (CheckpointFile.IsCheckpoint(path))
        {
            CheckpointFile.Load(path, model, optimizer: null);
            info?.Invoke($"initialised from {path}");
            return;
        }
        if (SafeTensorsFile.LooksLikeSafeTensors(path))
        {
            using var content = SafeTensorsFile.Read(path);
            LoadNamed(path, content.Tensors, model, info);
            return;
        }
        var root = PyTorchFile.Read(path);
        var tensors = new List<KeyValuePair<string, Tensor>>();
        try
        {
            var source = PyTorchFile.FindStateDict(root, out _);
            foreach (DictionaryEntry entry in source)
                if (entry.Key is string key && entry.Value is Tensor value) tensors.Add(new(key, value));
            LoadNamed(path, tensors, model, info);
        }
        finally
        {
            // Everything the file held (the optimiser state too) is freed once copied, as CheckpointImporter does.
            PyTorchFile.DisposeTensors(root);
        }
    }

    private static void LoadNamed(string path, IReadOnlyList<KeyValuePair<string, Tensor>> tensors, MoCo model, Action<string>? info)
    {
        var format = KeyLayout.Detect(tensors.Select(kv => kv.Key));
        bool backboneOnly = format is CheckpointFormat.Timm or CheckpointFormat.Torchvision or CheckpointFormat.MMSelfSup;
        var mapped = new Dictionary<string, (string Key, Tensor Value)>(StringComparer.Ordinal);
        int skipped = 0;
        foreach (var (key, value) in tensors)
        {
            if (format == CheckpointFormat.Toolkit)
            {
                mapped[key] = (key, value);
            }
            else if (backboneOnly)
            {
                var m = KeyLayout.For(format!.Value).Map(key);
                if (m.Part != CheckpointPart.Backbone)
                {
                    skipped++;
                    continue;
                }
                mapped["base_encoder.backbone." + m.Name] = (key, value);
                mapped["momentum_encoder.backbone." + m.Name] = (key, value);
            }
            else if (MapOfficialKey(key) is { } name)
            {
                mapped[name] = (key, value);
            }
        }
        var load = StrictStateDictLoad.Compare(model.state_dict(), mapped,
            backboneOnly ? k => k.StartsWith("base_encoder.backbone.", StringComparison.Ordinal) || k.StartsWith("momentum_encoder.backbone.", StringComparison.Ordinal) : _ => true,
            name => name, "model expects");
        if (!load.Fits)
            throw new InvalidDataException($"{path}: does not fit this model ({load.Found} of {load.Expected} tensors found by name; {load.Counts}); " +
                                           "nothing was loaded:\n  " + string.Join("\n  ", load.Problems(20)));
        var nonFinite = load.CopyIntoModel();
        if (nonFinite.Count > 0)
            info?.Invoke($"warning: {nonFinite.Count} tensors hold NaN or infinity ({string.Join(", ", nonFinite.Take(5))}): the run that wrote this checkpoint may have diverged");
        if (backboneOnly)
            info?.Invoke($"initialised both encoders' backbones from {format} checkpoint {path} ({mapped.Count / 2} tensors" +
                         $"{(skipped > 0 ? $", {skipped} others skipped" : "")}); the projector and predictor keep their fresh initialisation");
        else
            info?.Invoke($"initialised from {(format == CheckpointFormat.Toolkit ? "toolkit-layout" : "official")} checkpoint {path} ({mapped.Count} tensors)");
    }

    /// <summary>Official moco-v3 names to ours: the projector is the backbone's <c>head</c> (ViT) or <c>fc</c> (ResNet).
    /// The layout itself lives in <see cref="OfficialKeyLayout"/>.</summary>
    public static string? MapOfficialKey(string key) => OfficialKeyLayout.ToMoCo(key);
}
