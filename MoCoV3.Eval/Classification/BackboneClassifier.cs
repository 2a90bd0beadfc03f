using MoCoV3.Models;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MoCoV3.Eval.Classification;

/// <summary>
/// A backbone and a linear classifier: <c>logits = head(backbone(x))</c>, the head on the backbone's feature (fine-tuning,
/// the official linear evaluation) or on its embedding when the head is that wide (<see cref="Backbone.HeadInput"/>).
/// Module names <c>backbone.*</c>, <c>head.*</c>.
/// </summary>
public sealed class BackboneClassifier : nn.Module<Tensor, Tensor>
{
    private readonly Backbone backbone;
    private readonly Linear head;

    public BackboneClassifier(Backbone backbone, Linear head) : base(nameof(BackboneClassifier))
    {
        ArgumentNullException.ThrowIfNull(backbone);
        ArgumentNullException.ThrowIfNull(head);
        if (!backbone.AcceptsHead(head.in_features))
            throw new ArgumentException($"the head takes {head.in_features} features, the backbone gives {backbone.FeatureDim} " +
                                        $"(its embedding {backbone.EmbeddingDim})");
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
        return head.forward(backbone.HeadInput(x, head.in_features)).MoveToOuterDisposeScope();
    }
}
