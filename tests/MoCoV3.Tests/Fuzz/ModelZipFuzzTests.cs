using Microsoft.ML;
using Microsoft.ML.Data;
using MoCoV3.Tests.Data;

namespace MoCoV3.Tests.Fuzz;

/// <summary>
/// Fuzzes ML.NET model zips (<c>probe.zip</c>) as <c>mlContext.Model.LoadVerified</c> reads them: every mutated zip
/// loads and transforms, or is refused with an <see cref="InvalidDataException"/> naming the file (a damaged entry by
/// its CRC-32, a damaged archive by the zip reader) before ML.NET reads it.
/// </summary>
[TestClass]
public sealed class ModelZipFuzzTests
{
    private const int CiCases = 200;
    private const int Width = 16;

    private sealed class Row
    {
        [VectorType(Width)]
        public float[] Features { get; set; } = [];
    }

    [TestMethod]
    public void ModelZipsLoadOrAreRefusedWithTheFile()
    {
        using var dir = new TempDir();
        var ml = new MLContext(seed: 1);
        var random = new Random(5);
        var rows = Enumerable.Range(0, 20).Select(_ => new Row { Features = Enumerable.Range(0, Width).Select(_ => (float)random.NextDouble()).ToArray() }).ToList();
        IDataView data = ml.Data.LoadFromEnumerable(rows);
        string seedPath = dir.File("seed.zip");
        ml.Model.Save(ml.Transforms.NormalizeMinMax("Features").Fit(data), data.Schema, seedPath);
        byte[] zip = File.ReadAllBytes(seedPath);
        FuzzHarness.Run("ML.NET model .zip", dir.Path, [new FuzzSeed("probe.zip", zip)], path =>
        {
            var model = new MLContext().Model.LoadVerified(path, out _);
            float[] first = model.Transform(data).GetColumn<float[]>("Features").First();
            Assert.AreEqual(Width, first.Length, "a model that changed the features' width");
        }, CiCases, typeof(InvalidDataException)).AssertNoFailures();
    }
}
