using Onnx;

namespace MoCoV3.Export.Quantization;

/// <summary>The result of <see cref="DynamicInt8Quantizer.Quantize"/>: the new model and what was rewritten.</summary>
/// <param name="Model">The quantised model (the input model is not changed).</param>
/// <param name="Quantized">MatMuls now computed in int8.</param>
/// <param name="Skipped">MatMuls with a constant 2-D weight left in float32 (below <see cref="Int8QuantizeOptions.MinWeightElements"/>).</param>
/// <param name="WeightBytesBefore">Bytes of the quantised weights in float32.</param>
/// <param name="WeightBytesAfter">Bytes of the same weights in int8 plus their per-column scales.</param>
public sealed record QuantizedModel(ModelProto Model, int Quantized, int Skipped, long WeightBytesBefore, long WeightBytesAfter)
{
    public override string ToString() => FormattableString.Invariant(
        $"{Quantized} MatMuls int8 ({Skipped} small ones kept float32), weights {WeightBytesBefore / 1e6:F1} MB -> {WeightBytesAfter / 1e6:F1} MB");
}
