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

    /// <summary>
    /// Bound on <see cref="CosineMin"/> for a dynamically quantised int8 model: weights keep 7-8 bits per output column and
    /// activations 8 bits per tensor (per batch), so values move by ~1e-2 of their range; the embedding's direction
    /// must stay within cosine 0.99 of float32 (measured: ≥ 0.998 on the test models).
    /// </summary>
    public const double Int8CosineMin = 0.99;

    /// <summary>Whether the model ran in float16 (judged by <see cref="Fp16CosineMin"/> instead of <see cref="Fp32MaxAbsDiff"/>).</summary>
    public bool Fp16 { get; init; }

    /// <summary>Whether the model is int8-dynamic (judged by <see cref="Int8CosineMin"/>).</summary>
    public bool Int8 { get; init; }

    /// <summary>The largest |value| of the TorchSharp embedding (sets the scale of the float32 bound).</summary>
    public double ReferenceMaxAbs { get; init; }

    /// <summary>The float32 bound on <see cref="MaxAbsDiff"/>: 1e-4 × max(1, <see cref="ReferenceMaxAbs"/>).</summary>
    public double Fp32Bound => Fp32MaxAbsDiff * Math.Max(1.0, ReferenceMaxAbs);

    /// <summary>The bound <see cref="CosineMin"/> must meet when the model is not float32, else null.</summary>
    public double? CosineBound => Int8 ? Int8CosineMin : Fp16 ? Fp16CosineMin : null;

    public bool Passed => CosineBound is { } bound
        ? CosineMin >= bound && double.IsFinite(MaxAbsDiff)
        : MaxAbsDiff <= Fp32Bound;

    private string PrecisionName => Int8 ? "int8" : Fp16 ? "fp16" : "fp32";

    public override string ToString() =>
        FormattableString.Invariant($"max_abs_diff={MaxAbsDiff:G3} cosine_min={CosineMin:F6} batch={Batch} max_abs_ref={ReferenceMaxAbs:G3} ({PrecisionName}: {(Passed ? "passed" : "FAILED")})");
}
