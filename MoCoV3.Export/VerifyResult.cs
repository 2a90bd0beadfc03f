namespace MoCoV3.Export;

/// <summary>
/// How closely ONNX Runtime reproduces TorchSharp on one batch: the largest absolute difference of any embedding
/// value, the smallest cosine similarity between the two embeddings of one image, and the batch size.
/// </summary>
public sealed record VerifyResult(double MaxAbsDiff, double CosineMin, int Batch)
{
    /// <summary>
    /// Bound on <see cref="MaxAbsDiff"/> for a float32 model whose embedding values are at most 1 in magnitude (a ViT's
    /// LayerNorm output, a trained ResNet's pooled features); for larger embeddings the bound scales with
    /// <see cref="ReferenceMaxAbs"/>, because float32 rounding is relative (a random ResNet's features reach 1e2-1e5).
    /// </summary>
    public const double Fp32MaxAbsDiff = 1e-4;

    /// <summary>
    /// Bound on <see cref="CosineMin"/> for a float16 model: float16 keeps ~3 decimal digits, so absolute
    /// differences of 1e-3..1e-2 are expected; the direction of the embedding is what must survive.
    /// </summary>
    public const double Fp16CosineMin = 0.999;

    /// <summary>Whether the model ran in float16 (judged by <see cref="Fp16CosineMin"/> instead of <see cref="Fp32MaxAbsDiff"/>).</summary>
    public bool Fp16 { get; init; }

    /// <summary>The largest |value| of the TorchSharp embedding (sets the scale of the float32 bound).</summary>
    public double ReferenceMaxAbs { get; init; }

    /// <summary>The float32 bound on <see cref="MaxAbsDiff"/>: 1e-4 × max(1, <see cref="ReferenceMaxAbs"/>).</summary>
    public double Fp32Bound => Fp32MaxAbsDiff * Math.Max(1.0, ReferenceMaxAbs);

    public bool Passed => Fp16
        ? CosineMin >= Fp16CosineMin && double.IsFinite(MaxAbsDiff)
        : MaxAbsDiff <= Fp32Bound;

    public override string ToString() =>
        FormattableString.Invariant($"max_abs_diff={MaxAbsDiff:G3} cosine_min={CosineMin:F6} batch={Batch} max_abs_ref={ReferenceMaxAbs:G3} ({(Fp16 ? "fp16" : "fp32")}: {(Passed ? "passed" : "FAILED")})");
}
