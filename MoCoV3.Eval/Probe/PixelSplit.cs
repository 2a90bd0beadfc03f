using Microsoft.ML;
using Microsoft.ML.Data;
using MoCoV3.Data;

namespace MoCoV3.Eval.Probe;

/// <summary>
/// One split of a dataset read into memory: 8-bit CHW images and their labels. ML.NET rows (<see cref="ProbeColumns.Pixels"/>
/// as floats in [0, 1], <see cref="ProbeColumns.Label"/> as the class name) are made from it on the fly, so the floats
/// never all sit in memory at once.
/// </summary>
internal sealed class PixelSplit
{
    private const int ReadBatch = 512;

    private PixelSplit(string source, byte[] pixels, int[] labels, int channels, int height, int width, IReadOnlyList<string> classNames)
    {
        Source = source;
        Pixels = pixels;
        Labels = labels;
        Channels = channels;
        Height = height;
        Width = width;
        ClassNames = classNames;
    }

    public string Source { get; }
    public byte[] Pixels { get; }
    public int[] Labels { get; }
    public int Channels { get; }
    public int Height { get; }
    public int Width { get; }
    public IReadOnlyList<string> ClassNames { get; }
    public int Count => Labels.Length;
    public int ImageBytes => Channels * Height * Width;

    /// <summary>Reads the images at <paramref name="indices"/> of <paramref name="dataset"/>, in that order.</summary>
    /// <param name="source">What to call the result in messages.</param>
    public static PixelSplit Read(IImageDataset dataset, IReadOnlyList<int> indices, string source)
    {
        int count = indices.Count;
        if (count == 0) throw new DataFormatException(dataset.Source, null, "expected labelled images, found none");
        int imageBytes = dataset.Channels * dataset.Height * dataset.Width;
        var pixels = new byte[(long)count * imageBytes];
        var labels = new int[count];
        var batchLabels = new long[ReadBatch];
        for (int start = 0; start < count; start += ReadBatch)
        {
            int n = Math.Min(ReadBatch, count - start);
            int[] batch = indices.Skip(start).Take(n).ToArray();
            dataset.ReadBatch(batch, pixels.AsSpan(start * imageBytes, n * imageBytes), batchLabels.AsSpan(0, n));
            for (int i = 0; i < n; i++) labels[start + i] = checked((int)batchLabels[i]);
        }
        return new PixelSplit(source, pixels, labels, dataset.Channels, dataset.Height, dataset.Width, dataset.ClassNames);
    }

    /// <summary>Image <paramref name="index"/> as floats in [0, 1], CHW.</summary>
    public float[] ImageAsFloats(int index)
    {
        var floats = new float[ImageBytes];
        ReadOnlySpan<byte> image = Pixels.AsSpan(index * ImageBytes, ImageBytes);
        for (int i = 0; i < floats.Length; i++) floats[i] = image[i] / 255f;
        return floats;
    }

    /// <summary>Rows <paramref name="start"/> .. <paramref name="start"/> + <paramref name="count"/> as an ML.NET data view.</summary>
    public IDataView ToDataView(MLContext ml, int start, int count) =>
        ml.Data.LoadFromEnumerable(Rows(start, count), RowSchema(ImageBytes));

    /// <summary>How ML.NET reads a <see cref="PixelRow"/>: the pixel vector has <paramref name="imageBytes"/> values.</summary>
    public static SchemaDefinition RowSchema(int imageBytes)
    {
        var schema = SchemaDefinition.Create(typeof(PixelRow));
        schema[ProbeColumns.Pixels].ColumnType = new VectorDataViewType(NumberDataViewType.Single, imageBytes);
        return schema;
    }

    private IEnumerable<PixelRow> Rows(int start, int count)
    {
        for (int i = start; i < start + count; i++)
            yield return new PixelRow { Pixels = ImageAsFloats(i), Label = ClassNames[Labels[i]] };
    }

    /// <summary>
    /// The schema of a saved probe's input: the pixel vector alone, flat (C*H*W values). The images are square with 1 or 3
    /// channels, so the length alone gives the shape: a perfect square is 1 channel, three times one is 3.
    /// </summary>
    public static DataViewSchema InputSchema(int imageBytes)
    {
        var builder = new DataViewSchema.Builder();
        builder.AddColumn(ProbeColumns.Pixels, new VectorDataViewType(NumberDataViewType.Single, imageBytes));
        return builder.ToSchema();
    }

    internal sealed class PixelRow
    {
        [ColumnName(ProbeColumns.Pixels)]
        public float[] Pixels { get; set; } = [];

        public string Label { get; set; } = "";
    }
}
