using System.Collections;
using System.Collections.Specialized;
using MoCoV3.Checkpoints;
using MoCoV3.Method;
using MoCoV3.Models;
using static TorchSharp.torch;

namespace MoCoV3.Checkpoints;

/// <summary>
/// Converts the backbone of a checkpoint between layouts: it is imported strictly (see <see cref="CheckpointImporter"/>),
/// then written as
/// <list type="bullet">
/// <item><c>toolkit</c>: a toolkit checkpoint (usable with <c>--init</c>) whose query and momentum encoders both hold the
/// backbone; the projector and predictor are <b>freshly initialised</b> (from the global RNG), since only the backbone
/// is carried over, and the file holds no optimiser state (it cannot be <c>--resume</c>d);</item>
/// <item><c>timm</c>: a flat state dict of the backbone with timm (ViT) / torchvision (ResNet) names, plus
/// <c>head.*</c> / <c>fc.*</c> when the source had a classifier (timm's <c>load_state_dict</c>, torchvision's);</item>
/// <item><c>official</c>: from a toolkit checkpoint, the whole MoCo state as moco-v3's <c>save_checkpoint</c> writes it
/// (<c>module.base_encoder.*</c> with its projector, <c>module.momentum_encoder.*</c>, <c>module.predictor.*</c>,
/// <c>epoch</c>, <c>arch</c>; no optimiser state); from other layouts <c>{'state_dict': {'module.base_encoder.&lt;name&gt;': …},
/// 'arch': …}</c>, the backbone as <c>main_lincls.py</c> reads it;</item>
/// <item>safetensors (<see cref="ConvertToSafeTensors"/>): the <c>timm</c> state dict as <c>model.safetensors</c>, with the
/// timm <c>config.json</c> (<see cref="TimmConfig"/>) beside it, as timm and Hugging Face hub models ship.</item>
/// </list>
/// </summary>
public static class CheckpointConverter
{
    public static ConversionResult Convert(string input, CheckpointFormat? from, ModelPreset? arch, CheckpointFormat to, string output)
    {
        if (to is not (CheckpointFormat.Toolkit or CheckpointFormat.Timm or CheckpointFormat.Official))
            throw new ArgumentException($"cannot write {to} checkpoints; --to must be toolkit, timm or official");
        if (string.Equals(Path.GetFullPath(input), Path.GetFullPath(output), StringComparison.Ordinal))
            throw new ArgumentException($"{output}: the output would overwrite the input");

        using var imported = CheckpointImporter.Load(input, from, arch);
        var notes = new List<string>();
        int written = to switch
        {
            CheckpointFormat.Toolkit => WriteToolkit(imported, output),
            CheckpointFormat.Timm => WriteTimm(imported, output),
            _ when imported.Format == CheckpointFormat.Toolkit && CheckpointFile.IsCheckpoint(input) => WriteOfficialMoCo(input, imported.Preset, output, notes),
            _ => WriteOfficial(imported, output, notes),
        };
        return new ConversionResult(imported.Preset, imported.Format, to, output, written, imported.Report) { Notes = notes };
    }

    /// <summary>The name of the weights file when <c>output</c> is a folder (timm's and the hub's).</summary>
    public const string SafeTensorsName = "model.safetensors";

    /// <summary>
    /// Writes the backbone (and classifier, if any) with timm (ViT) / torchvision (ResNet) names as a safetensors file, its
    /// preset and layout in <c>__metadata__</c> (so <c>export --from auto</c> needs no <c>--arch</c>), and the timm
    /// <c>config.json</c> beside it. <paramref name="output"/> is the <c>.safetensors</c> file, or a folder that receives
    /// <c>model.safetensors</c>; both files are written with <see cref="MoCoV3.IO.DurableFile"/>.
    /// </summary>
    public static ConversionResult ConvertToSafeTensors(string input, CheckpointFormat? from, ModelPreset? arch, string output)
    {
        string weights = output.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase) ? output : Path.Combine(output, SafeTensorsName);
        if (string.Equals(Path.GetFullPath(input), Path.GetFullPath(weights), StringComparison.Ordinal))
            throw new ArgumentException($"{weights}: the output would overwrite the input");
        string config = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(weights))!, TimmConfig.FileName);
        if (string.Equals(Path.GetFullPath(input), config, StringComparison.Ordinal))
            throw new ArgumentException($"{config}: the config.json would overwrite the input");
        TimmConfig.CheckReplaceable(config);

        using var imported = CheckpointImporter.Load(input, from, arch);
        var preset = imported.Preset;
        var layout = BackboneStateDict.LayoutFor(preset);
        var state = BackboneStateDict.Build(preset, imported.Backbone, imported.Head?.Weight, imported.Head?.Bias);
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["format"] = "pt",
            [SafeTensorsContent.PresetKey] = System.Text.Json.JsonSerializer.Serialize(preset, ModelPreset.Json),
            [SafeTensorsContent.LayoutKey] = layout.Format.ToString().ToLowerInvariant(),
        };
        var notes = new List<string>();
        var json = TimmConfig.Build(preset, imported.Backbone.FeatureDim, (int)(imported.Head?.Classes ?? 0), notes);
        try
        {
            SafeTensorsFile.Write(weights, state.Cast<System.Collections.DictionaryEntry>().Select(e => KeyValuePair.Create((string)e.Key, (Tensor)e.Value!)), metadata);
        }
        finally
        {
            BackboneStateDict.Dispose(state);
        }
        TimmConfig.Write(config, json);
        return new ConversionResult(preset, imported.Format, layout.Format, weights, state.Count, imported.Report)
        {
            Container = CheckpointContainer.SafeTensors,
            Config = config,
            Notes = notes,
        };
    }

    private static int WriteToolkit(ImportedBackbone imported, string output)
    {
        using var moco = new MoCo(imported.Preset, BackboneFactory.Create);
        var source = imported.Backbone.state_dict();
        using (no_grad())
        {
            foreach (var encoder in new[] { moco.BaseEncoder, moco.MomentumEncoder })
            {
                var target = encoder.Backbone.state_dict();
                foreach (var (name, value) in source) target[name].copy_(value);
            }
        }
        string? dir = Path.GetDirectoryName(Path.GetFullPath(output));
        if (dir is not null) Directory.CreateDirectory(dir);
        var plan = new RunPlan { Batch = imported.Preset.Recipe.Batch, StepsPerEpoch = 1, TotalSteps = 0, PeakLr = 0, WarmupEpochs = 0, Seed = 0 };
        CheckpointFile.Save(output, new CheckpointHeader { Preset = imported.Preset, Plan = plan, Step = 0, ElapsedSeconds = 0 }, moco, optimizer: null);
        return source.Count;
    }

    private static int WriteTimm(ImportedBackbone imported, string output) =>
        BackboneStateDict.Write(output, imported.Preset, imported.Backbone, imported.Head?.Weight, imported.Head?.Bias);

    private static int WriteOfficial(ImportedBackbone imported, string output, List<string> notes)
    {
        var state = BackboneStateDict.Build(imported.Preset, imported.Backbone, layout: OfficialKeyLayout.Instance);
        try
        {
            PyTorchFile.Write(output, new Hashtable { ["state_dict"] = state, ["arch"] = imported.Preset.Name.Replace('-', '_') });
        }
        finally
        {
            BackboneStateDict.Dispose(state);
        }
        notes.Add($"note: a {imported.Format} file holds no whole MoCo state here, so {output} has the backbone only (what main_lincls.py " +
                  "reads); convert a toolkit checkpoint for the projectors, momentum encoder and predictor too");
        return state.Count;
    }

    /// <summary>
    /// A toolkit pretraining checkpoint as moco-v3's <c>save_checkpoint</c> writes one: <c>state_dict</c> holds both encoders
    /// with their projectors (<c>head.*</c> for a ViT, <c>fc.*</c> for a ResNet) and the predictor, every key prefixed
    /// <c>module.</c> as DDP saves them, so <c>MoCo_ViT</c>/<c>MoCo_ResNet</c>'s <c>load_state_dict</c> finds every key; plus
    /// <c>epoch</c> (whole epochs done) and <c>arch</c>. The optimiser state is not written: our LARS/AdamW state does not map
    /// onto a PyTorch optimiser's <c>state_dict</c> one to one, so a continued official run starts its optimiser afresh.
    /// </summary>
    private static int WriteOfficialMoCo(string input, ModelPreset preset, string output, List<string> notes)
    {
        using var moco = new MoCo(preset, BackboneFactory.Create);
        var header = CheckpointFile.Load(input, moco, optimizer: null);
        var state = new OrderedDictionary(StringComparer.Ordinal);
        using (var scope = NewDisposeScope())
        {
            foreach (var (name, value) in moco.state_dict())
                state[ToOfficial(name, preset.IsVit)] = value.detach().contiguous().DetachFromDisposeScope();
        }
        long epoch = header.Plan.StepsPerEpoch > 0 ? header.Step / header.Plan.StepsPerEpoch : 0;
        try
        {
            PyTorchFile.Write(output, new Hashtable { ["state_dict"] = state, ["epoch"] = epoch, ["arch"] = preset.Name.Replace('-', '_') });
        }
        finally
        {
            BackboneStateDict.Dispose(state);
        }
        notes.Add($"note: {output} holds the whole MoCo state (both encoders, projectors, predictor; epoch {epoch}) but no optimiser " +
                  "state, which the official main_moco.py --resume also reads: load it with load_state_dict, or start its optimiser afresh");
        return state.Count;
    }

    /// <summary>Our <c>MoCo</c> names to the official ones: the inverse of <see cref="OfficialKeyLayout.ToMoCo"/>.</summary>
    public static string ToOfficial(string name, bool isVit)
    {
        foreach (var encoder in new[] { "base_encoder.", "momentum_encoder." })
        {
            if (!name.StartsWith(encoder, StringComparison.Ordinal)) continue;
            string rest = name[encoder.Length..];
            if (rest.StartsWith("projector.", StringComparison.Ordinal)) return "module." + encoder + (isVit ? "head." : "fc.") + rest["projector.".Length..];
            if (rest.StartsWith("backbone.", StringComparison.Ordinal)) return "module." + encoder + rest["backbone.".Length..];
        }
        if (name.StartsWith("predictor.", StringComparison.Ordinal)) return "module." + name;
        throw new InvalidOperationException($"no official name for MoCo tensor '{name}'");
    }
}
