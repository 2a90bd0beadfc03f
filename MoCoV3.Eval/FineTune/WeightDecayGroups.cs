using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MoCoV3.Eval.FineTune;

/// <summary>
/// Splits a model's trainable parameters into those that get weight decay and those that do not: biases and norm
/// weights (every parameter with at most one dimension), the position embedding and the class token (timm's
/// <c>no_weight_decay</c>; MMSelfSup's fine-tune configs exclude the same).
/// </summary>
public static class WeightDecayGroups
{
    public static (List<Parameter> Decay, List<Parameter> NoDecay) Split(nn.Module model)
    {
        ArgumentNullException.ThrowIfNull(model);
        var decay = new List<Parameter>();
        var noDecay = new List<Parameter>();
        foreach (var (name, p) in model.named_parameters())
        {
            if (!p.requires_grad) continue;
            (IsExempt(name, p) ? noDecay : decay).Add(p);
        }
        return (decay, noDecay);
    }

    public static bool IsExempt(string name, Tensor p)
    {
        string last = name[(name.LastIndexOf('.') + 1)..];
        return p.dim() <= 1 || last is "pos_embed" or "cls_token";
    }
}
