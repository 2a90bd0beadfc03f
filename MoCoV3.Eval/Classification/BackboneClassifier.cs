using MoCoV3.Models;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MoCoV3.Eval.Classification;

/// <summary>A backbone and a linear classifier on its feature: <c>logits = head(backbone(x))</c>. Module names <c>backbone.*</c>, <c>head.*</c>.</summary>
public sealed class BackboneClassifier : nn.Module<Tensor, Tensor>
{
    private readonly Backbone backbone;
    private readonly Linear head;

    public BackboneClassifier(Backbone backbone, Linear head) : base(nameof(BackboneClassifier))
    {
        ArgumentNullException.ThrowIfNull(backbone);
        ArgumentNullException.ThrowIfNull(head);
        if (head.in_features != backbone.FeatureDim)
            throw new ArgumentException($"the head takes {head.in_features} features, the backbone gives {backbone.FeatureDim}");
        this.backbone = backbone;
        this.head = head;
        RegisterComponents();
    }

    public Backbone Backbone => backbone;

    public Linear Head => head;

    public int Classes => (int)head.out_features;

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        return head.forward(backbone.forward(x)).MoveToOuterDisposeScope();
    }
}
