using System.Collections;
using System.Collections.Specialized;
using MoCoV3.Checkpoints;
using MoCoV3.Method;
using MoCoV3.Models;
using MoCoV3.Training;
using static TorchSharp.torch;

namespace MoCoV3.Export.Checkpoints;

/// <summary>
/// Converts the backbone of a checkpoint between layouts: it is imported strictly (see <see cref="CheckpointImporter"/>),
/// then written as
/// <list type="bullet">
/// <item><c>toolkit</c>: a toolkit checkpoint (usable with <c>--init</c>) whose query and momentum encoders both hold the
/// backbone; the projector and predictor are <b>freshly initialised</b> (from the global RNG), since only the backbone
/// is carried over, and the file holds no optimiser state (it cannot be <c>--resume</c>d);</item>
/// <item><c>timm</c>: a flat state dict of the backbone with timm (ViT) / torchvision (ResNet) names, plus
/// <c>head.*</c> / <c>fc.*</c> when the source had a classifier (timm's <c>load_state_dict</c>, torchvision's);</item>
/// <item><c>official</c>: <c>{'state_dict': {'module.base_encoder.&lt;name&gt;': …}, 'arch': …}</c> as moco-v3's
/// <c>main_lincls.py</c> reads it (backbone only: no projector, momentum encoder or predictor).</item>
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
        int written = to switch
        {
            CheckpointFormat.Toolkit => WriteToolkit(imported, output),
            CheckpointFormat.Timm => WriteTimm(imported, output),
            _ => WriteOfficial(imported, output),
        };
        return new ConversionResult(imported.Preset, imported.Format, to, output, written, imported.Report);
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
        var plan = new RunPlan { Batch = imported.Preset.Batch, StepsPerEpoch = 1, TotalSteps = 0, PeakLr = 0, WarmupEpochs = 0, Seed = 0 };
        CheckpointFile.Save(output, new CheckpointHeader { Preset = imported.Preset, Plan = plan, Step = 0, ElapsedSeconds = 0 }, moco, optimizer: null);
        return source.Count;
    }

    private static int WriteTimm(ImportedBackbone imported, string output)
    {
        var layout = KeyLayout.For(imported.Preset.IsVit ? CheckpointFormat.Timm : CheckpointFormat.Torchvision);
        var state = BackboneState(imported, layout);
        if (imported.Head is { } head)
        {
            state[layout.FromClassifier("weight", imported.Preset.IsVit)] = head.Weight;
            if (head.Bias is not null) state[layout.FromClassifier("bias", imported.Preset.IsVit)] = head.Bias;
        }
        PyTorchFile.Write(output, state);
        return state.Count;
    }

    private static int WriteOfficial(ImportedBackbone imported, string output)
    {
        var state = BackboneState(imported, OfficialKeyLayout.Instance);
        PyTorchFile.Write(output, new Hashtable { ["state_dict"] = state, ["arch"] = imported.Preset.Name.Replace('-', '_') });
        return state.Count;
    }

    /// <summary>The backbone's tensors under the layout's names, in the model's order (an ordered dict pickles as one).</summary>
    private static OrderedDictionary BackboneState(ImportedBackbone imported, KeyLayout layout)
    {
        var state = new OrderedDictionary(StringComparer.Ordinal);
        using var scope = NewDisposeScope();   // owns the detach() temporaries
        foreach (var (name, value) in imported.Backbone.state_dict())
            state[layout.FromBackbone(name)] = value.detach().contiguous().DetachFromDisposeScope();
        return state;
    }
}
