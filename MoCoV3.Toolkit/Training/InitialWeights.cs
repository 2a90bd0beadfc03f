using System.Collections;
using MoCoV3.Checkpoints;
using MoCoV3.Method;
using static TorchSharp.torch;

namespace MoCoV3.Training;

/// <summary>
/// <c>--init</c>: starts a run from the weights of a checkpoint of this toolkit, or of an official moco-v3
/// <c>.pth.tar</c> (<c>{'state_dict': {'module.base_encoder.…', 'module.momentum_encoder.…', 'module.predictor.…'}}</c>).
/// Keys and shapes are checked: a missing, unexpected or mis-shaped tensor is reported by name, and a
/// checkpoint whose tensors do not fit the model is refused rather than half-loaded.
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
        LoadOfficial(path, model, info);
    }

    private static void LoadOfficial(string path, MoCo model, Action<string>? info)
    {
        var source = PyTorchFile.FindStateDict(PyTorchFile.Read(path), out _);
        var mapped = new Dictionary<string, Tensor>();
        foreach (DictionaryEntry entry in source)
        {
            if (entry.Key is not string key || entry.Value is not Tensor value) continue;
            string? name = MapOfficialKey(key);
            if (name is not null) mapped[name] = value;
        }
        var target = model.state_dict();
        var problems = new List<string>();
        var missing = target.Keys.Where(k => !mapped.ContainsKey(k) && !k.EndsWith("num_batches_tracked", StringComparison.Ordinal)).ToList();
        var unexpected = mapped.Keys.Where(k => !target.ContainsKey(k)).ToList();
        foreach (var (k, v) in mapped)
            if (target.TryGetValue(k, out var t) && !t.shape.SequenceEqual(v.shape))
                problems.Add($"{k}: checkpoint has [{string.Join(",", v.shape)}], model expects [{string.Join(",", t.shape)}]");
        if (missing.Count > 0) problems.Add($"missing: {string.Join(", ", missing.Take(20))}{(missing.Count > 20 ? $" (+{missing.Count - 20} more)" : "")}");
        if (unexpected.Count > 0) problems.Add($"unexpected: {string.Join(", ", unexpected.Take(20))}{(unexpected.Count > 20 ? $" (+{unexpected.Count - 20} more)" : "")}");
        if (problems.Count > 0)
            throw new InvalidDataException($"{path}: does not fit this model ({mapped.Count} tensors matched by name):\n  " + string.Join("\n  ", problems));
        using (no_grad())
        {
            foreach (var (k, v) in mapped) target[k].copy_(v);
        }
        info?.Invoke($"initialised from official checkpoint {path} ({mapped.Count} tensors)");
    }

    /// <summary>Official moco-v3 names to ours: the projector is the backbone's <c>head</c> (ViT) or <c>fc</c> (ResNet).
    /// The layout itself lives in <see cref="OfficialKeyLayout"/>.</summary>
    public static string? MapOfficialKey(string key) => OfficialKeyLayout.ToMoCo(key);
}
