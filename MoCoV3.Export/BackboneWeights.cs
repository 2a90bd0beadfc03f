using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MoCoV3.Export;

/// <summary>
/// A backbone's state dict and module tree by name, read as float32 on the CPU, with the checks an exporter needs:
/// a missing key or a shape that does not match the preset is an error naming the key.
/// </summary>
internal sealed class BackboneWeights
{
    private readonly Dictionary<string, Tensor> state;
    private readonly Dictionary<string, nn.Module> modules;

    public BackboneWeights(nn.Module backbone)
    {
        state = backbone.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value, StringComparer.Ordinal);
        modules = backbone.named_modules().ToDictionary(m => m.name, m => m.module, StringComparer.Ordinal);
    }

    public IReadOnlyCollection<string> Keys => state.Keys;

    public bool Has(string key) => state.ContainsKey(key);

    public Tensor Tensor(string key, params long[] shape)
    {
        if (!state.TryGetValue(key, out var t))
            throw new InvalidOperationException($"backbone has no tensor '{key}'");
        if (shape.Length > 0 && !t.shape.SequenceEqual(shape))
            throw new InvalidOperationException($"backbone tensor '{key}' is [{string.Join(",", t.shape)}], the preset needs [{string.Join(",", shape)}]");
        return t;
    }

    public float[] Floats(string key, params long[] shape) => TensorData.ToFloatArray(Tensor(key, shape));

    /// <summary>A Linear weight <c>[out, in]</c> transposed to <c>[in, out]</c> (the right operand of MatMul), row-major.</summary>
    public float[] Transposed(string key, long outFeatures, long inFeatures)
    {
        using var scope = NewDisposeScope();
        return TensorData.ToFloatArray(Tensor(key, outFeatures, inFeatures).t());
    }

    public T Module<T>(string name) where T : nn.Module
    {
        if (!modules.TryGetValue(name, out var m))
            throw new InvalidOperationException($"backbone has no module '{name}'");
        return m as T ?? throw new InvalidOperationException($"backbone module '{name}' is a {m.GetType().Name}, expected {typeof(T).Name}");
    }

    public bool HasModule(string name) => modules.ContainsKey(name);

    public double LayerNormEps(string name) => Module<LayerNorm>(name).eps;
}
