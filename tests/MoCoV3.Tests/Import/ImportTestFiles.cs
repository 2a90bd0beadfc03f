using System.Collections;
using System.Text.RegularExpressions;
using MoCoV3.Method;
using MoCoV3.Models;
using TorchSharp;
using TorchSharp.PyBridge;
using static TorchSharp.torch;

namespace MoCoV3.Tests.Import;

/// <summary>
/// Synthetic checkpoints in the external layouts (recipe §3), written with PyTorchPickler the way the real files are
/// wrapped. The renaming here is written out from the recipe's tables on purpose, independently of the importer's
/// key layouts, so that the tests check those layouts rather than repeat them.
/// </summary>
internal static class ImportTestFiles
{
    public static ModelPreset MicroResNet => TestPresets.Get("resnet18-fmnist")
        .WithResNet(resnet => resnet with { Layers = [1, 1, 1, 1] })
        .WithHeads(heads => heads with { HiddenDim = 64, OutDim = 16 })
        .WithInput(input => input with { ImageSize = 16 }) with
    {
        Name = "micro-resnet",
    };

    public static string TempFile(string name)
    {
        return Path.Combine(TestData.NewFolder(), name);
    }

    public static string Pickle(string name, Hashtable root)
    {
        string path = TempFile(name);
        PyTorchPickler.PickleStateDict(path, root);
        return path;
    }

    /// <summary>Moves every tensor of a module off its init (zero-init BN weights, sin-cos pos_embed, unit running stats), so that a skipped copy shows.</summary>
    public static void Randomize(nn.Module module, long seed)
    {
        var generator = new Generator((ulong)seed);
        using var _ = no_grad();
        foreach (var (name, t) in module.state_dict())
        {
            if (!t.is_floating_point()) continue;
            if (name.EndsWith("running_var", StringComparison.Ordinal)) t.copy_(rand(t.shape, generator: generator) + 0.5);
            else t.add_(randn(t.shape, generator: generator) * 0.05);
        }
    }

    /// <summary>A MoCo with randomised weights: the source of the official and MMSelfSup files.</summary>
    public static MoCo SourceMoCo(ModelPreset preset, long seed)
    {
        manual_seed(seed);
        var model = new MoCo(preset, BackboneFactory.Create);
        Randomize(model, seed);
        return model;
    }

    public static Backbone SourceBackbone(ModelPreset preset, long seed)
    {
        manual_seed(seed);
        var backbone = BackboneFactory.Create(preset);
        Randomize(backbone, seed);
        return backbone;
    }

    /// <summary>moco-v3's main_moco.py: <c>{'epoch', 'arch', 'state_dict': {'module.base_encoder.…' (projector = head/fc), 'module.momentum_encoder.…', 'module.predictor.…'}, 'optimizer'}</c>.</summary>
    public static string Official(MoCo model, bool vit)
    {
        string projector = vit ? "head." : "fc.";
        var state = new Hashtable();
        foreach (var (key, value) in model.state_dict())
        {
            string official = Regex.Replace(key, @"^(base_encoder|momentum_encoder)\.backbone\.", "$1.");
            official = Regex.Replace(official, @"^(base_encoder|momentum_encoder)\.projector\.", "$1." + projector);
            state["module." + official] = value;
        }
        var optimizer = new Hashtable { ["state"] = new Hashtable(), ["param_groups"] = new ArrayList() };
        return Pickle("vit-s-300ep.pth.tar", new Hashtable { ["state_dict"] = state, ["epoch"] = 300, ["arch"] = vit ? "vit_small" : "resnet50", ["optimizer"] = optimizer });
    }

    /// <summary>mmcls ViT names for one of our backbone names (recipe §3.2 table); ResNet names pass unchanged.</summary>
    public static string MmName(string ours)
    {
        string s = ours;
        s = Regex.Replace(s, @"^patch_embed\.proj\.", "patch_embed.projection.");
        s = Regex.Replace(s, @"^blocks\.(\d+)\.norm1\.", "layers.$1.ln1.");
        s = Regex.Replace(s, @"^blocks\.(\d+)\.norm2\.", "layers.$1.ln2.");
        s = Regex.Replace(s, @"^blocks\.(\d+)\.attn\.", "layers.$1.attn.");
        s = Regex.Replace(s, @"^blocks\.(\d+)\.mlp\.fc1\.", "layers.$1.ffn.layers.0.0.");
        s = Regex.Replace(s, @"^blocks\.(\d+)\.mlp\.fc2\.", "layers.$1.ffn.layers.1.");
        s = Regex.Replace(s, @"^norm\.", "ln1.");
        return s;
    }

    /// <summary>An MMSelfSup MoCoV3 checkpoint: <c>{'meta', 'state_dict': {'backbone.…', 'neck.…', 'head.predictor.…', 'momentum_encoder.module.0/1.…', 'momentum_encoder.steps'}}</c>.</summary>
    public static string MMSelfSup(MoCo model)
    {
        var state = new Hashtable();
        foreach (var (key, value) in model.state_dict())
        {
            string mm = key switch
            {
                _ when key.StartsWith("base_encoder.backbone.") => "backbone." + MmName(key["base_encoder.backbone.".Length..]),
                _ when key.StartsWith("base_encoder.projector.") => "neck.layer" + key["base_encoder.projector.".Length..],
                _ when key.StartsWith("momentum_encoder.backbone.") => "momentum_encoder.module.0." + MmName(key["momentum_encoder.backbone.".Length..]),
                _ when key.StartsWith("momentum_encoder.projector.") => "momentum_encoder.module.1.layer" + key["momentum_encoder.projector.".Length..],
                _ => "head.predictor.layer" + key["predictor.".Length..],
            };
            state[mm] = value;
        }
        state["momentum_encoder.steps"] = tensor(1000L);
        var meta = new Hashtable { ["epoch"] = 300, ["iter"] = 150000, ["mmengine_version"] = "0.7.3", ["dataset_meta"] = new Hashtable() };
        return Pickle("mocov3_vit-small-p16_300e.pth", new Hashtable { ["meta"] = meta, ["state_dict"] = state });
    }

    /// <summary>A flat timm / torchvision state dict with a classifier named <paramref name="head"/> (<c>head</c> or <c>fc</c>), 10 classes.</summary>
    public static string Flat(Backbone backbone, string head, string name, long seed = 5)
    {
        var state = new Hashtable();
        foreach (var (key, value) in backbone.state_dict()) state[key] = value;
        var generator = new Generator((ulong)seed);
        state[head + ".weight"] = randn([10, backbone.FeatureDim], generator: generator);
        state[head + ".bias"] = randn([10], generator: generator);
        return Pickle(name, state);
    }

    /// <summary>The largest absolute difference of the features of two backbones (both in eval mode) on a random batch.</summary>
    public static double FeatureDifference(Backbone expected, Backbone actual, ModelPreset preset, int batch = 2)
    {
        expected.eval();
        actual.eval();
        using var _ = no_grad();
        manual_seed(99);
        using var x = randn(batch, preset.Input.Channels, preset.Input.ImageSize, preset.Input.ImageSize);
        using var a = expected.forward(x);
        using var b = actual.forward(x);
        Assert.AreEqual(preset.IsVit ? preset.Vit.EmbedDim : a.shape[1], b.shape[1]);
        return (a - b).abs().max().item<float>();
    }
}
