using Microsoft.ML;
using Microsoft.ML.Data;

namespace MoCoV3.Eval.Probe;

/// <summary>
/// Features computed once and kept in memory (row-major <c>Count x Dim</c> floats) with their labels, so that the L2
/// sweep, the final fit and the evaluation all read the same cached values instead of running the encoder again.
/// </summary>
internal sealed class FeatureSet
{
    public FeatureSet(string column, float[] values, int dim, int[] labels, IReadOnlyList<string> classNames)
    {
        if (values.LongLength != (long)labels.Length * dim)
            throw new ArgumentException($"{values.LongLength} feature values are not {labels.Length} rows of {dim}");
        Column = column;
        Values = values;
        Dim = dim;
        Labels = labels;
        ClassNames = classNames;
    }

    /// <summary>The name of the feature column (<see cref="ProbeColumns.Embedding"/> or <see cref="ProbeColumns.Pixels"/>).</summary>
    public string Column { get; }
    public float[] Values { get; }
    public int Dim { get; }
    public int[] Labels { get; }
    public IReadOnlyList<string> ClassNames { get; }
    public int Count => Labels.Length;

    /// <summary>The raw pixels as features (the raw-pixel baseline).</summary>
    public static FeatureSet FromPixels(PixelSplit split)
    {
        var values = new float[(long)split.Count * split.ImageBytes];
        for (long i = 0; i < values.LongLength; i++) values[i] = split.Pixels[i] / 255f;
        return new FeatureSet(ProbeColumns.Pixels, values, split.ImageBytes, split.Labels, split.ClassNames);
    }

    /// <summary>The rows at <paramref name="indices"/> (all rows when null) as a data view: the feature column and the label text.</summary>
    public IDataView ToDataView(MLContext ml, IReadOnlyList<int>? indices = null)
    {
        var schema = SchemaDefinition.Create(typeof(FeatureRow));
        schema[FeatureRow.FeaturesMember].ColumnName = Column;
        schema[Column].ColumnType = new VectorDataViewType(NumberDataViewType.Single, Dim);
        return ml.Data.LoadFromEnumerable(Rows(indices), schema);
    }

    private IEnumerable<FeatureRow> Rows(IReadOnlyList<int>? indices)
    {
        int n = indices?.Count ?? Count;
        for (int i = 0; i < n; i++)
        {
            int row = indices?[i] ?? i;
            yield return new FeatureRow { Features = Values.AsSpan(row * Dim, Dim).ToArray(), Label = ClassNames[Labels[row]] };
        }
    }

    internal sealed class FeatureRow
    {
        public const string FeaturesMember = nameof(Features);

        public float[] Features { get; set; } = [];
        public string Label { get; set; } = "";
    }
}
