using MoCoV3.Checkpoints;
using MoCoV3.Method;
using MoCoV3.Models;
using static TorchSharp.torch;

namespace MoCoV3.Tests.Distributed;

/// <summary>The weights of pretraining runs, read from their checkpoints, and their differences.</summary>
internal static class RunWeights
{
    /// <summary>The model of the checkpoint in run folder <paramref name="dir"/>.</summary>
    public static MoCo Load(string dir)
    {
        string path = Path.Combine(dir, CheckpointFile.DefaultName);
        var model = new MoCo(CheckpointFile.ReadHeader(path).Preset, BackboneFactory.Create);
        CheckpointFile.Load(path, model, null);
        return model;
    }

    public static IEnumerable<(string Name, Tensor Value)> Parameters(MoCo model) => model.named_parameters().Select(p => (p.name, (Tensor)p.parameter));

    /// <summary>The floating-point buffers: BatchNorm running statistics.</summary>
    public static IEnumerable<(string Name, Tensor Value)> Buffers(MoCo model) =>
        model.named_buffers().Where(b => b.buffer.is_floating_point()).Select(b => (b.name, b.buffer));

    public static double MaxAbs(MoCo model, Func<MoCo, IEnumerable<(string Name, Tensor Value)>> tensors) =>
        tensors(model).Max(t => t.Value.abs().max().to_type(ScalarType.Float64).item<double>());

    public static double MaxDiff(MoCo a, MoCo b, Func<MoCo, IEnumerable<(string Name, Tensor Value)>> tensors)
    {
        var other = tensors(b).ToDictionary(t => t.Name, t => t.Value);
        return tensors(a).Max(t => (t.Value.to_type(ScalarType.Float64) - other[t.Name].to_type(ScalarType.Float64)).abs().max().item<double>());
    }

    /// <summary>The tensor of largest difference.</summary>
    public static string Worst(MoCo a, MoCo b, Func<MoCo, IEnumerable<(string Name, Tensor Value)>> tensors)
    {
        var other = tensors(b).ToDictionary(t => t.Name, t => t.Value);
        return tensors(a).MaxBy(t => (t.Value.to_type(ScalarType.Float64) - other[t.Name].to_type(ScalarType.Float64)).abs().max().item<double>()).Name;
    }
}
