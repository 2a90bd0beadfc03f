using MoCoV3.Checkpoints;

namespace MoCoV3.Checkpoints;

/// <summary>A checkpoint key that a backbone import did not load, and why: the part of the model it belongs to.</summary>
public readonly record struct SkippedKey(string Key, CheckpointPart Part);

/// <summary>What an import read: the backbone tensors loaded (our names), the keys skipped by part, and notes.</summary>
public sealed record ImportReport
{
    public required string Source { get; init; }
    public required CheckpointFormat Format { get; init; }
    /// <summary>The kind of file read: toolkit checkpoint, torch.save archive or safetensors.</summary>
    public CheckpointContainer Container { get; init; } = CheckpointContainer.TorchSave;
    /// <summary>The wrapper keys followed to the state dict, e.g. <c>state_dict</c>; empty for a flat file.</summary>
    public string Wrapper { get; init; } = "";
    public required IReadOnlyList<string> Loaded { get; init; }
    public required IReadOnlyList<SkippedKey> Skipped { get; init; }
    public IReadOnlyList<string> Notes { get; init; } = [];

    /// <summary>One line per fact: counts of loaded and skipped tensors (skipped grouped by part), then the notes.</summary>
    public IEnumerable<string> Lines()
    {
        string wrapper = Wrapper.Length > 0 ? $" (under '{Wrapper}')" : "";
        string container = Container == CheckpointContainer.SafeTensors ? " in a safetensors file" : "";
        yield return $"{Source}: {Format} checkpoint{container}{wrapper}; loaded {Loaded.Count} backbone tensors";
        foreach (var group in Skipped.GroupBy(s => s.Part).OrderBy(g => g.Key))
            yield return $"skipped {group.Count()} {Describe(group.Key)} tensors (e.g. {group.First().Key})";
        foreach (var note in Notes) yield return note;
    }

    public static string Describe(CheckpointPart part) => part switch
    {
        CheckpointPart.ClassifierHead => "classifier head",
        CheckpointPart.MomentumEncoder => "momentum encoder",
        CheckpointPart.Bookkeeping => "bookkeeping",
        _ => part.ToString().ToLowerInvariant(),
    };
}
