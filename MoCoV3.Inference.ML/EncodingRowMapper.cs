using Microsoft.ML;
using Microsoft.ML.Data;

namespace MoCoV3.Inference.ML;

/// <summary>The row-at-a-time form of the transformer, for <c>PredictionEngine</c>: each row's image is embedded alone, once.</summary>
internal sealed class EncodingRowMapper : IRowToRowMapper
{
    private readonly ImageEncoderTransformer parent;

    public EncodingRowMapper(ImageEncoderTransformer parent, DataViewSchema inputSchema, DataViewSchema outputSchema)
    {
        this.parent = parent;
        InputSchema = inputSchema;
        OutputSchema = outputSchema;
    }

    public DataViewSchema InputSchema { get; }

    public DataViewSchema OutputSchema { get; }

    private int OutputIndex => InputSchema.Count;

    public IEnumerable<DataViewSchema.Column> GetDependencies(IEnumerable<DataViewSchema.Column> dependingColumns)
    {
        var columns = dependingColumns.ToList();
        var result = columns.Where(c => c.Index < OutputIndex).Select(c => InputSchema[c.Index]).ToList();
        if (columns.Any(c => c.Index == OutputIndex)) result.Add(InputSchema[parent.InputColumnName]);
        return result.DistinctBy(c => c.Index).ToList();
    }

    public DataViewRow GetRow(DataViewRow input, IEnumerable<DataViewSchema.Column> activeColumns)
    {
        ArgumentNullException.ThrowIfNull(input);
        bool output = activeColumns.Any(c => c.Index == OutputIndex);
        return new Row(this, input, output);
    }

    private sealed class Row : DataViewRow
    {
        private readonly EncodingRowMapper mapper;
        private readonly DataViewRow input;
        private readonly ImageReader? read;
        private long cachedPosition = -1;
        private float[] embedding = [];

        public Row(EncodingRowMapper mapper, DataViewRow input, bool output)
        {
            this.mapper = mapper;
            this.input = input;
            if (output) read = mapper.parent.ReaderFor(input);
        }

        public override DataViewSchema Schema => mapper.OutputSchema;

        public override long Position => input.Position;

        public override long Batch => input.Batch;

        public override ValueGetter<DataViewRowId> GetIdGetter() => input.GetIdGetter();

        public override bool IsColumnActive(DataViewSchema.Column column) =>
            column.Index == mapper.OutputIndex ? read is not null : input.IsColumnActive(input.Schema[column.Index]);

        public override ValueGetter<TValue> GetGetter<TValue>(DataViewSchema.Column column)
        {
            if (column.Index != mapper.OutputIndex) return input.GetGetter<TValue>(input.Schema[column.Index]);
            if (read is null) throw new InvalidOperationException($"column '{column.Name}' is not active");
            if (typeof(TValue) != typeof(VBuffer<float>))
                throw new InvalidOperationException($"column '{column.Name}' holds VBuffer<float>, not {typeof(TValue).Name}");
            ValueGetter<VBuffer<float>> getter = (ref VBuffer<float> value) =>
            {
                if (cachedPosition != input.Position || embedding.Length == 0)
                {
                    var load = read();
                    var pixels = new float[mapper.parent.Encoder.Preprocessing.ValuesPerImage];
                    load(pixels);
                    embedding = mapper.parent.Encoder.EmbedPreprocessed(pixels, 1);
                    cachedPosition = input.Position;
                }
                var editor = VBufferEditor.Create(ref value, embedding.Length);
                embedding.CopyTo(editor.Values);
                value = editor.Commit();
            };
            return (ValueGetter<TValue>)(Delegate)getter;
        }
    }
}
