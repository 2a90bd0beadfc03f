using System.Collections;
using MoCoV3.Method;
using TorchSharp.PyBridge;
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
        Span<byte> head = stackalloc byte[8];
        using (var f = File.OpenRead(path)) head = head[..f.Read(head)];
        if (head.SequenceEqual("MOCOV3CK"u8))
        {
            CheckpointFile.Load(path, model, optimizer: null);
            info?.Invoke($"initialised from {path}");
            return;
        }
        if (head.Length < 2 || head[0] != (byte)'P' || head[1] != (byte)'K')
            throw new InvalidDataException($"{path}: neither a MoCoV3.NET checkpoint nor a PyTorch zip checkpoint (first bytes {Convert.ToHexString(head)})");
        LoadOfficial(path, model, info);
    }

    private static void LoadOfficial(string path, MoCo model, Action<string>? info)
    {
        Hashtable root;
        try
        {
            root = PyTorchUnpickler.UnpickleStateDict(path);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            throw new InvalidDataException($"{path}: cannot read PyTorch checkpoint: {e.Message}", e);
        }
        var source = root["state_dict"] as Hashtable ?? root;
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

    /// <summary>Official moco-v3 names to ours: the projector is the backbone's <c>head</c> (ViT) or <c>fc</c> (ResNet).</summary>
    public static string? MapOfficialKey(string key)
    {
        const string prefix = "module.";
        if (key.StartsWith(prefix, StringComparison.Ordinal)) key = key[prefix.Length..];
        foreach (var encoder in new[] { "base_encoder.", "momentum_encoder." })
        {
            if (!key.StartsWith(encoder, StringComparison.Ordinal)) continue;
            string rest = key[encoder.Length..];
            foreach (var head in new[] { "head.", "fc." })
                if (rest.StartsWith(head, StringComparison.Ordinal)) return encoder + "projector." + rest[head.Length..];
            return encoder + "backbone." + rest;
        }
        return key.StartsWith("predictor.", StringComparison.Ordinal) ? key : null;
    }
}
