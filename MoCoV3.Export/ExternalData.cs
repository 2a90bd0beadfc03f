using MoCoV3.IO;
using System.Globalization;
using Onnx;

namespace MoCoV3.Export;

/// <summary>
/// ONNX external data: initializers' bytes in a side file next to the model, each at a 4096-aligned offset, and in
/// the model only <c>data_location = EXTERNAL</c> with <c>location</c> (file name relative to the model's folder),
/// <c>offset</c> and <c>length</c>.
/// </summary>
internal static class ExternalData
{
    public const int Alignment = 4096;

    /// <summary>Tensors smaller than this stay inside the model (shape constants, scalars).</summary>
    public const int MinTensorBytes = 1024;

    public static string PathFor(string modelPath) => modelPath + ".data";

    /// <summary>Writes the side file (atomically) and returns a copy of the model whose large initializers point into it.</summary>
    public static ModelProto Write(ModelProto model, string dataPath)
    {
        var copy = model.Clone(); // tensor bytes are immutable ByteStrings, shared rather than copied
        string location = Path.GetFileName(dataPath);
        DurableFile.Write(dataPath, stream =>
        {
            foreach (var tensor in copy.Graph.Initializer)
            {
                int length = tensor.RawData.Length;
                if (length < MinTensorBytes) continue;
                long offset = (stream.Position + Alignment - 1) / Alignment * Alignment;
                if (offset > stream.Position) stream.Write(new byte[offset - stream.Position]);
                stream.Write(tensor.RawData.Span);
                tensor.RawData = Google.Protobuf.ByteString.Empty;
                tensor.DataLocation = TensorProto.Types.DataLocation.External;
                tensor.ExternalData.Add(new StringStringEntryProto { Key = "location", Value = location });
                tensor.ExternalData.Add(new StringStringEntryProto { Key = "offset", Value = offset.ToString(CultureInfo.InvariantCulture) });
                tensor.ExternalData.Add(new StringStringEntryProto { Key = "length", Value = length.ToString(CultureInfo.InvariantCulture) });
            }
        });
        return copy;
    }
}
