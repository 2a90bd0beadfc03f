using static TorchSharp.torch;

namespace MoCoV3.Checkpoints;

/// <summary>
/// The one strict load of tensors read from a file into a model's state dict, as PyTorch's <c>load_state_dict(strict=True)</c>:
/// every expected tensor of the model must be found by name with its shape, and nothing else may be left over, or nothing
/// is loaded. BatchNorm's <c>num_batches_tracked</c> counters may be absent (older files lack them); they stay at 0.
/// <see cref="CheckpointImporter"/> (a backbone) and <see cref="InitialWeights"/> (a whole MoCo model) both use it.
/// </summary>
public sealed class StrictStateDictLoad
{
    private readonly Dictionary<string, Tensor> target;
    private readonly IReadOnlyDictionary<string, (string Key, Tensor Value)> source;

    private StrictStateDictLoad(Dictionary<string, Tensor> target, IReadOnlyDictionary<string, (string Key, Tensor Value)> source)
    {
        this.target = target;
        this.source = source;
    }

    /// <summary>Entries <c>mis-shaped: …</c>, one per tensor whose shape differs from the model's.</summary>
    public IReadOnlyList<string> MisShaped { get; private init; } = [];
    /// <summary>Entries <c>missing: …</c>, one per expected tensor the file lacks.</summary>
    public IReadOnlyList<string> Missing { get; private init; } = [];
    /// <summary>Entries <c>unexpected: …</c>, one per tensor of the file the model has no place for.</summary>
    public IReadOnlyList<string> Unexpected { get; private init; } = [];
    /// <summary>BatchNorm counters the file lacks (left at 0; not an error).</summary>
    public IReadOnlyList<string> MissingCounters { get; private init; } = [];
    /// <summary>Expected tensors found by name.</summary>
    public int Found { get; private init; }
    /// <summary>Tensors the model expects.</summary>
    public int Expected { get; private init; }

    public bool Fits => MisShaped.Count == 0 && Missing.Count == 0 && Unexpected.Count == 0;

    /// <summary>
    /// Compares <paramref name="source"/> (model name → the file's key and tensor) with the model's
    /// <paramref name="target"/> state dict, restricted to the names <paramref name="expected"/> accepts.
    /// <paramref name="fileName"/> gives the file's key a missing tensor would have; <paramref name="expects"/> names the
    /// model in messages (e.g. <c>preset 'vit-small' expects</c>).
    /// </summary>
    public static StrictStateDictLoad Compare(Dictionary<string, Tensor> target, IReadOnlyDictionary<string, (string Key, Tensor Value)> source,
                                              Func<string, bool> expected, Func<string, string> fileName, string expects)
    {
        var misShaped = new List<string>();
        var missing = new List<string>();
        var counters = new List<string>();
        int found = 0, expectedCount = 0;
        // In the model's order, and the leftovers sorted by the file's key, so that messages are the same in every
        // process (a torch.save file's dict order is not).
        foreach (var (name, t) in target.Where(kv => expected(kv.Key)))
        {
            expectedCount++;
            if (source.TryGetValue(name, out var found1))
            {
                found++;
                if (!t.shape.SequenceEqual(found1.Value.shape))
                    misShaped.Add($"mis-shaped: {Describe(name, found1.Key)}: checkpoint {Shape(found1.Value.shape)}, {expects} {Shape(t.shape)}");
            }
            else if (name.EndsWith("num_batches_tracked", StringComparison.Ordinal)) counters.Add(name);
            else missing.Add($"missing: {fileName(name)} {Shape(t.shape)}");
        }
        var unexpected = source.Where(kv => !target.ContainsKey(kv.Key) || !expected(kv.Key)).OrderBy(kv => kv.Value.Key, StringComparer.Ordinal)
            .Select(kv => $"unexpected: {kv.Value.Key} {Shape(kv.Value.Value.shape)}{(kv.Key == kv.Value.Key ? "" : $" (read as {kv.Key})")}").ToList();
        return new StrictStateDictLoad(target, source)
        {
            MisShaped = misShaped, Missing = missing, Unexpected = unexpected, MissingCounters = counters, Found = found, Expected = expectedCount,
        };
    }

    /// <summary>The problems, at most <paramref name="shown"/> of each kind, then a count of the rest.</summary>
    public IEnumerable<string> Problems(int shown = 10)
    {
        foreach (var group in new[] { MisShaped, Missing, Unexpected })
        {
            foreach (var entry in group.Take(shown)) yield return entry;
            if (group.Count > shown) yield return $"(+{group.Count - shown} more {group[0][..group[0].IndexOf(':')]})";
        }
    }

    /// <summary><c>3 mis-shaped, 0 missing, 1 unexpected</c>.</summary>
    public string Counts => $"{MisShaped.Count} mis-shaped, {Missing.Count} missing, {Unexpected.Count} unexpected";

    /// <summary>
    /// Copies every tensor into the model (converting dtypes) once <see cref="Fits"/>; returns the file keys of floating-point
    /// tensors holding NaN or infinity (a sign that the run that wrote them diverged).
    /// </summary>
    public IReadOnlyList<string> CopyIntoModel()
    {
        if (!Fits) throw new InvalidOperationException("the tensors do not fit the model: " + Counts);
        // A dispose scope owns the temporaries here (copy_'s handles, isfinite/all): freed at its end, and never left
        // to a finalizer that could free one while a native call still reads it.
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        foreach (var (name, (_, value)) in source) target[name].copy_(value);
        // One file tensor may fill several model tensors (a backbone loaded into both encoders): each is checked once.
        return source.Values.DistinctBy(v => v.Key, StringComparer.Ordinal)
            .Where(v => v.Value.is_floating_point() && !v.Value.isfinite().all().item<bool>()).Select(v => v.Key).ToList();
    }

    private static string Describe(string name, string key) => key == name ? name : $"{name} (checkpoint key {key})";

    internal static string Shape(long[] shape) => $"[{string.Join(",", shape)}]";
}
