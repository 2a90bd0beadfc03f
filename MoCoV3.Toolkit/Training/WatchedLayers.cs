using MoCoV3.Models;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MoCoV3.Training;

/// <summary>
/// The two places whose gradients the paper's instability shows up in first (§4.2: the gradient spikes appear in the
/// first layer before the last ones): the first trained layer of the backbone and its last block.
/// ViT: the patch projection when it trains, otherwise (MoCo v3's frozen random projection) block 0; last = the last block.
/// ResNet: <c>conv1</c> + <c>bn1</c>; last = the last block of <c>layer4</c>.
/// </summary>
public sealed class WatchedLayers
{
    private WatchedLayers(string firstName, IReadOnlyList<Parameter> first, string lastName, IReadOnlyList<Parameter> last)
    {
        FirstName = firstName;
        First = first;
        LastName = lastName;
        Last = last;
    }

    public string FirstName { get; }
    public IReadOnlyList<Parameter> First { get; }
    public string LastName { get; }
    public IReadOnlyList<Parameter> Last { get; }

    public static WatchedLayers Of(Backbone backbone)
    {
        var trained = backbone.named_parameters().Where(p => p.parameter.requires_grad).ToList();
        List<Parameter> Under(string prefix) => trained.Where(p => p.name.StartsWith(prefix, StringComparison.Ordinal)).Select(p => p.parameter).ToList();
        string LastChild(string container) => container + trained
            .Select(p => p.name)
            .Where(n => n.StartsWith(container, StringComparison.Ordinal))
            .Select(n => int.Parse(n[container.Length..].Split('.')[0], System.Globalization.CultureInfo.InvariantCulture))
            .DefaultIfEmpty(0).Max() + ".";

        if (backbone is VisionTransformer)
        {
            string first = Under("patch_embed.").Count > 0 ? "patch_embed." : "blocks.0.";
            string last = LastChild("blocks.");
            return new WatchedLayers(first.TrimEnd('.'), Under(first), last.TrimEnd('.'), Under(last));
        }
        if (backbone is ResNet)
        {
            string last = LastChild("layer4.");
            return new WatchedLayers("conv1+bn1", [.. Under("conv1."), .. Under("bn1.")], last.TrimEnd('.'), Under(last));
        }
        throw new ArgumentException($"no watched layers defined for {backbone.GetType().Name}");
    }

    /// <summary>
    /// L2 norm of the current gradients of <paramref name="parameters"/> (0 when none has a gradient). Gradients packed in
    /// one flat tensor (<see cref="Optim.ParameterBuffer"/>) are summed in one kernel over it.
    /// </summary>
    public static double GradNorm(IEnumerable<Parameter> parameters)
    {
        using var _ = NewDisposeScope();
        using var __ = no_grad();
        if (parameters is IReadOnlyList<Parameter> list && Optim.ParameterBuffer.FlatGradientsOf(list) is Tensor flat)
            return Math.Sqrt(flat.to_type(ScalarType.Float32).square().sum().item<float>()); // the padding in it is zeros
        var squares = parameters.Where(p => p.grad is not null).Select(p => p.grad!.to_type(ScalarType.Float32).square().sum()).ToList();
        return squares.Count == 0 ? 0 : Math.Sqrt(stack(squares).sum().item<float>());
    }
}
