using static TorchSharp.torch;

namespace MoCoV3.Models;

/// <summary>
/// The fixed 2-D sin-cos position embedding of MoCo v3 (paper §5, "we use fixed 2-D sin-cos position
/// embeddings"), with the official code's conventions, which checkpoints depend on:
/// <list type="bullet">
/// <item>pos_dim = D/4 and ω_d = 1 / 10000^(d/pos_dim), d = 0..pos_dim-1;</item>
/// <item>for patch token k (row-major over a <c>gridH x gridW</c> grid) r = k / gridW is its row and
/// c = k % gridW its column (the reference code builds these with an 'ij' meshgrid named (w, h), so the
/// first half encodes the row despite its name);</item>
/// <item>pe[k] = [sin(r ω), cos(r ω), sin(c ω), cos(c ω)];</item>
/// <item>the class token's slot (index 0) is all zeros.</item>
/// </list>
/// </summary>
public static class SinCosPositionEmbedding
{
    public const double Temperature = 10000.0;

    /// <summary>The table <c>[1, 1 + gridH * gridW, dim]</c>, class-token slot first.</summary>
    public static Tensor Build(int gridH, int gridW, int dim)
    {
        if (dim % 4 != 0) throw new ArgumentException($"embedding dim {dim} must be a multiple of 4 for 2-D sin-cos", nameof(dim));
        int posDim = dim / 4;
        int tokens = gridH * gridW;
        var table = new float[(1 + tokens) * dim];
        for (int k = 0; k < tokens; k++)
        {
            double row = k / gridW, col = k % gridW;
            int o = (1 + k) * dim;
            for (int d = 0; d < posDim; d++)
            {
                double omega = 1.0 / Math.Pow(Temperature, (double)d / posDim);
                table[o + d] = (float)Math.Sin(row * omega);
                table[o + posDim + d] = (float)Math.Cos(row * omega);
                table[o + 2 * posDim + d] = (float)Math.Sin(col * omega);
                table[o + 3 * posDim + d] = (float)Math.Cos(col * omega);
            }
        }
        return tensor(table, [1, 1 + tokens, dim]);
    }
}
