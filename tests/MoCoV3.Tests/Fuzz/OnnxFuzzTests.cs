using MoCoV3.Inference;
using Google.Protobuf;
using MoCoV3.Export;
using MoCoV3.Models;
using MoCoV3.Tests.Data;
using MoCoV3.Tests.Export;
using Onnx;

namespace MoCoV3.Tests.Fuzz;

/// <summary>
/// Fuzzes the loading of exported ONNX models: every mutated model is either checked in managed code and then loaded
/// and run by ONNX Runtime, or refused with an <see cref="InvalidDataException"/> naming the file; garbage never
/// reaches the native loader unchecked. Sealed seeds (with <c>mocov3.digest</c>) cover the digest check.
/// </summary>
[TestClass]
public sealed class OnnxFuzzTests
{
    private const int CiCases = 400; // four seeds: as many cases per unsealed seed as before the sealed ones

    [TestMethod]
    public void OnnxModelsLoadOrAreRefusedWithTheFile()
    {
        using var dir = new TempDir();
        ModelPreset preset = TestPresets.MicroVit;
        using var backbone = ExportTestModels.Build(preset);
        byte[] model = OnnxExporter.Export(backbone, preset, new ExportOptions()).ToByteArray();
        // Without a digest the mutations reach the model checks and ONNX Runtime; with one, the digest check (and its JSON).
        byte[] sealedModel = OnnxDigest.Seal(ModelProto.Parser.ParseFrom(model), folder: null).ToByteArray();
        FuzzSeed[] seeds =
        [
            new("encoder.onnx", model), new("graph-encoder.onnx", model, OnnxMutations.Mutate),
            new("sealed-encoder.onnx", sealedModel), new("digest-encoder.onnx", sealedModel, OnnxMutations.MutateDigest),
        ];
        var pixels = new float[preset.Input.Channels * preset.Input.ImageSize * preset.Input.ImageSize];
        FuzzHarness.Run(".onnx", dir.Path, seeds, path =>
        {
            using var runner = new OnnxModelRunner(path);
            if (runner.Channels * runner.Height * runner.Width != pixels.Length)
                return; // a mutated input shape: loading was the check
            var outputs = runner.Run(pixels, 1);
            Assert.IsTrue(outputs.Count > 0, "a model that gives no output");
        }, CiCases, typeof(InvalidDataException)).AssertNoFailures();
    }
}
