using MoCoV3.Models;
using static MoCoV3.Export.OnnxGraphBuilder;

namespace MoCoV3.Export;

/// <summary>
/// The ONNX graph of <see cref="VisionTransformer"/>: patch Conv, tokens, class token, position embedding, pre-norm
/// blocks (LayerNormalization, attention written out with MatMul/Softmax, exact-erf GELU MLP), final norm, class token.
/// </summary>
internal static class VitGraph
{
    /// <summary>
    /// Emits the backbone on the normalised image <paramref name="x"/> <c>[N, C, H, W]</c>; returns the class token <c>[N, D]</c>
    /// (what a classification head takes) and the embedding (the preset's <see cref="EmbeddingSpec"/>: the class token, with
    /// <c>cls+mean</c> ++ the mean patch token, and with <c>@lastN</c> the same from each of the last N blocks, last first).
    /// </summary>
    public static (string ClassToken, string Embedding) Emit(OnnxGraphBuilder g, BackboneWeights w, ModelPreset preset, string x)
    {
        long d = preset.Vit.EmbedDim, p = preset.Vit.PatchSize, c = preset.Input.Channels;
        long grid = preset.Input.ImageSize / preset.Vit.PatchSize;
        long tokens = grid * grid + 1;
        long heads = preset.Vit.Heads, dh = d / heads;
        long hidden = (long)(d * preset.Vit.MlpRatio);

        // Patches: Conv with stride P, then [N, D, g, g] -> [N, D, T-1] -> [N, T-1, D].
        string conv = g.Node("Conv", "patch_embed.proj",
            [x, g.Weight("patch_embed.proj.weight", w.Floats("patch_embed.proj.weight", d, c, p, p), d, c, p, p),
             g.Weight("patch_embed.proj.bias", w.Floats("patch_embed.proj.bias", d), d)],
            Attr("kernel_shape", p, p), Attr("strides", p, p));
        string flat = g.Node("Reshape", "patch_embed.flatten", [conv, g.Int64s("shape.n_d_rest", [0, d, -1], 3)]);
        string patches = g.Node("Transpose", "patch_embed.transpose", [flat], Attr("perm", 0L, 2L, 1L));

        // Class token expanded to the batch: shape [N, 1, 1] from Shape(patches)[0:1] ++ [1, 1].
        string batch = g.Node("Shape", "cls_token.batch", [patches], Attr("start", 0L), Attr("end", 1L));
        string clsShape = g.Node("Concat", "cls_token.shape", [batch, g.Int64s("shape.1_1", [1, 1], 2)], Attr("axis", 0L));
        string cls = g.Node("Expand", "cls_token.expand",
            [g.Weight("cls_token", w.Floats("cls_token", 1, 1, d), 1, 1, d), clsShape]);
        string joined = g.Node("Concat", "tokens", [cls, patches], Attr("axis", 1L));
        string h = g.Node("Add", "pos_embed",
            [joined, g.Weight("pos_embed", w.Floats("pos_embed", 1, tokens, d), 1, tokens, d)]);

        string qkvShape = g.Int64s("shape.n_t_3_h_dh", [0, 0, 3, heads, dh], 5);
        string tokenShape = g.Int64s("shape.n_t_d", [0, 0, d], 3);
        string scale = g.Scalar("attn.scale", (float)(1.0 / Math.Sqrt(dh)));
        string sqrt2 = g.Scalar("gelu.sqrt2", (float)Math.Sqrt(2.0));
        string one = g.Scalar("gelu.one", 1f);
        string half = g.Scalar("gelu.half", 0.5f);
        string[] qkvIndex = [g.Int64Scalar("index.0", 0), g.Int64Scalar("index.1", 1), g.Int64Scalar("index.2", 2)];
        var embedding = EmbeddingSpec.Parse(preset.Backbone.Embedding);
        var kept = new string[embedding.LastBlocks]; // block outputs, last block first

        for (int i = 0; i < preset.Vit.Depth; i++)
        {
            string b = $"blocks.{i}";

            // Attention: x + proj(softmax(q kᵀ / sqrt(Dh)) v).
            string n1 = LayerNorm(g, w, $"{b}.norm1", h, d);
            string qkv = Linear(g, w, $"{b}.attn.qkv", n1, d, 3 * d);
            string split = g.Node("Reshape", $"{b}.attn.split", [qkv, qkvShape]);                     // [N, T, 3, H, Dh]
            string heads5 = g.Node("Transpose", $"{b}.attn.heads", [split], Attr("perm", 2L, 0L, 3L, 1L, 4L)); // [3, N, H, T, Dh]
            string q = g.Node("Gather", $"{b}.attn.q", [heads5, qkvIndex[0]], Attr("axis", 0L));
            string k = g.Node("Gather", $"{b}.attn.k", [heads5, qkvIndex[1]], Attr("axis", 0L));
            string v = g.Node("Gather", $"{b}.attn.v", [heads5, qkvIndex[2]], Attr("axis", 0L));
            string kt = g.Node("Transpose", $"{b}.attn.kT", [k], Attr("perm", 0L, 1L, 3L, 2L));
            string scores = g.Node("MatMul", $"{b}.attn.scores", [q, kt]);                             // [N, H, T, T]
            string scaled = g.Node("Mul", $"{b}.attn.scale", [scores, scale]);
            string probs = g.Node("Softmax", $"{b}.attn.softmax", [scaled], Attr("axis", -1L));
            string attended = g.Node("MatMul", $"{b}.attn.attend", [probs, v]);                         // [N, H, T, Dh]
            string merged = g.Node("Transpose", $"{b}.attn.merge", [attended], Attr("perm", 0L, 2L, 1L, 3L));
            string merged3 = g.Node("Reshape", $"{b}.attn.flatten", [merged, tokenShape]);             // [N, T, D]
            string proj = Linear(g, w, $"{b}.attn.proj", merged3, d, d);
            h = g.Node("Add", $"{b}.residual1", [h, proj]);

            // MLP: x + fc2(gelu(fc1(norm2(x)))), GELU exact: x * 0.5 * (1 + erf(x / sqrt 2)).
            string n2 = LayerNorm(g, w, $"{b}.norm2", h, d);
            string fc1 = Linear(g, w, $"{b}.mlp.fc1", n2, d, hidden);
            string erf = g.Node("Erf", $"{b}.mlp.gelu", [g.Node("Div", $"{b}.mlp.gelu", [fc1, sqrt2])]);
            string gelu = g.Node("Mul", $"{b}.mlp.gelu", [g.Node("Mul", $"{b}.mlp.gelu", [fc1, g.Node("Add", $"{b}.mlp.gelu", [erf, one])]), half]);
            string fc2 = Linear(g, w, $"{b}.mlp.fc2", gelu, hidden, d);
            h = g.Node("Add", $"{b}.residual2", [h, fc2]);
            int fromLast = preset.Vit.Depth - 1 - i;
            if (fromLast < kept.Length) kept[fromLast] = h;
        }

        // The final norm (its weights stored once) on each kept block; the last block's class token feeds a head.
        string normWeight = g.Weight("norm.weight", w.Floats("norm.weight", d), d), normBias = g.Weight("norm.bias", w.Floats("norm.bias", d), d);
        float normEps = (float)w.LayerNormEps("norm");
        string classToken = "";
        var parts = new List<string>();
        string[] sliceFrom1 = embedding.MeanPatch
            ? [g.Int64s("slice.from_1", [1], 1), g.Int64s("slice.to_end", [long.MaxValue], 1), g.Int64s("slice.axis_1", [1], 1)]
            : [];
        string flatShape = embedding.MeanPatch ? g.Int64s("shape.n_d", [0, d], 2) : "";
        for (int k = 0; k < kept.Length; k++)
        {
            string suffix = k == 0 ? "" : $".last{k + 1}";
            string normed = g.Node("LayerNormalization", "norm" + suffix, [kept[k], normWeight, normBias], Attr("axis", -1L), Attr("epsilon", normEps));
            string classOut = g.Node("Gather", "cls_token.out" + suffix, [normed, qkvIndex[0]], Attr("axis", 1L));
            if (k == 0) classToken = classOut;
            parts.Add(classOut);
            if (embedding.MeanPatch) parts.Add(MeanPatchToken(g, normed, sliceFrom1, flatShape, suffix));
        }
        return (classToken, parts.Count == 1 ? classToken : g.Node("Concat", "embedding." + (embedding.MeanPatch ? "cls_mean" : "cls"), parts, Attr("axis", 1L)));
    }

    /// <summary>
    /// Mean of the patch tokens: tokens[:, 1:] -> [N, D, T-1] -> GlobalAveragePool (the same op in every opset, where
    /// ReduceMean moved its axes from an attribute to an input at 18) -> [N, D].
    /// </summary>
    private static string MeanPatchToken(OnnxGraphBuilder g, string normed, string[] sliceFrom1, string flatShape, string suffix)
    {
        string patchTokens = g.Node("Slice", "patch_tokens" + suffix, [normed, .. sliceFrom1]);
        string channelsFirst = g.Node("Transpose", "patch_tokens.transpose" + suffix, [patchTokens], Attr("perm", 0L, 2L, 1L));
        string pooled = g.Node("GlobalAveragePool", "patch_tokens.mean" + suffix, [channelsFirst]);
        return g.Node("Reshape", "patch_tokens.flatten" + suffix, [pooled, flatShape]);
    }

    private static string LayerNorm(OnnxGraphBuilder g, BackboneWeights w, string name, string x, long d) =>
        g.Node("LayerNormalization", name,
            [x, g.Weight($"{name}.weight", w.Floats($"{name}.weight", d), d), g.Weight($"{name}.bias", w.Floats($"{name}.bias", d), d)],
            Attr("axis", -1L), Attr("epsilon", (float)w.LayerNormEps(name)));

    /// <summary>x · Wᵀ + b with the weight stored transposed, <c>[in, out]</c>, as <c>{name}.weight_t</c>.</summary>
    internal static string Linear(OnnxGraphBuilder g, BackboneWeights w, string name, string x, long inFeatures, long outFeatures)
    {
        string weight = g.Weight($"{name}.weight_t", w.Transposed($"{name}.weight", outFeatures, inFeatures), inFeatures, outFeatures);
        string bias = g.Weight($"{name}.bias", w.Floats($"{name}.bias", outFeatures), outFeatures);
        return g.Node("Add", name, [g.Node("MatMul", name, [x, weight]), bias]);
    }
}
