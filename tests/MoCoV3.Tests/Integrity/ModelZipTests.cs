using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace MoCoV3.Tests.Integrity;

/// <summary>
/// ML.NET model zips (<c>probe.zip</c>): <c>mlContext.Model.LoadVerified</c> checks every entry's CRC-32, which
/// <c>mlContext.Model.Load</c> does not, and refuses a damaged model naming the file and the entry.
/// </summary>
[TestClass]
public sealed class ModelZipTests
{
    private const int Width = 64;

    private sealed class Row
    {
        [VectorType(Width)]
        public float[] Features { get; set; } = [];
    }

    [TestMethod]
    public void ADamagedModelZip_IsRefusedNamingTheEntry_AnIntactOneLoads()
    {
        var ml = new MLContext(seed: 1);
        var random = new Random(3);
        var rows = Enumerable.Range(0, 40).Select(_ => new Row { Features = Enumerable.Range(0, Width).Select(_ => (float)random.NextDouble() * 100).ToArray() }).ToList();
        IDataView data = ml.Data.LoadFromEnumerable(rows);
        var model = ml.Transforms.NormalizeMinMax("Features").Fit(data);
        string path = Path.Combine(TestData.NewFolder("modelzip-"), "probe.zip");
        ml.Model.Save(model, data.Schema, path);

        var reloaded = new MLContext().Model.LoadVerified(path, out var schema);
        Assert.AreEqual(Width, ((VectorDataViewType)schema["Features"].Type).Size);
        float[] first = reloaded.Transform(data).GetColumn<float[]>("Features").First();
        float[] expected = model.Transform(data).GetColumn<float[]>("Features").First();
        CollectionAssert.AreEqual(expected, first);

        string largest;
        using (var archive = ZipFile.OpenRead(path))
            largest = archive.Entries.MaxBy(e => e.CompressedLength)!.FullName;
        var (offset, length) = EntryData(path, largest);
        Assert.IsGreaterThan(64L, length, $"{largest} is big enough to damage");
        CorruptBytes.Flip(path, offset + length / 2, 4);
        var e = Assert.ThrowsExactly<InvalidDataException>(() => new MLContext().Model.LoadVerified(path, out _));
        StringAssert.StartsWith(e.Message, $"{path}: zip entry {largest} is corrupt: ");
    }

    /// <summary>Where an entry's (compressed) bytes lie in the file, from the local headers.</summary>
    private static (long Offset, long Length) EntryData(string path, string name)
    {
        Dictionary<string, long> sizes;
        using (var archive = ZipFile.OpenRead(path))
            sizes = archive.Entries.ToDictionary(e => e.FullName, e => e.CompressedLength);
        byte[] file = File.ReadAllBytes(path);
        long pos = 0;
        while (BinaryPrimitives.ReadUInt32LittleEndian(file.AsSpan((int)pos)) == 0x04034b50)
        {
            int flags = BinaryPrimitives.ReadUInt16LittleEndian(file.AsSpan((int)pos + 6));
            int nameLength = BinaryPrimitives.ReadUInt16LittleEndian(file.AsSpan((int)pos + 26));
            int extraLength = BinaryPrimitives.ReadUInt16LittleEndian(file.AsSpan((int)pos + 28));
            string entry = Encoding.UTF8.GetString(file, (int)pos + 30, nameLength);
            long data = pos + 30 + nameLength + extraLength;
            if (entry == name) return (data, sizes[entry]);
            pos = data + sizes[entry];
            if ((flags & 8) != 0) // a data descriptor follows, with or without its signature
                pos += (BinaryPrimitives.ReadUInt32LittleEndian(file.AsSpan((int)pos)) == 0x08074b50 ? 4 : 0) + 12;
        }
        Assert.Fail($"no local header for {name}");
        return default;
    }
}
