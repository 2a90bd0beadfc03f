using static TorchSharp.torch;

namespace MoCoV3.Export;

/// <summary>Copies TorchSharp tensors out as float32 arrays on the CPU.</summary>
internal static class TensorData
{
    public static float[] ToFloatArray(Tensor t)
    {
        using var scope = NewDisposeScope();
        return t.detach().cpu().to_type(ScalarType.Float32).contiguous().data<float>().ToArray();
    }
}
