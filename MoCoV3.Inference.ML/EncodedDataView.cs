using Microsoft.ML;
using Microsoft.ML.Data;

namespace MoCoV3.Inference.ML;

/// <summary>
/// The input view plus the embedding column, computed in batches: a second cursor over the input reads the image column
/// ahead of the rows handed out, <see cref="ImageEncoder.MaxBatch"/> at a time. The input is asked for the same rows in the
/// same order twice (no shuffling here; ML.NET shuffles this view by caching it when asked).
/// </summary>
internal sealed class EncodedDataView : IDataView
{
    private readonly ImageEncoderTransformer parent;
    private readonly IDataView input;

    public EncodedDataView(ImageEncoderTransformer parent, IDataView input, DataViewSchema schema)
    {
        this.parent = parent;
        this.input = input;
        Schema = schema;
    }

    public bool CanShuffle => false;

    public DataViewSchema Schema { get; }

    private int OutputIndex => input.Schema.Count;

    public long? GetRowCount() => input.GetRowCount();

    public DataViewRowCursor GetRowCursor(IEnumerable<DataViewSchema.Column> columnsNeeded, Random? rand = null)
    {
        ArgumentNullException.ThrowIfNull(columnsNeeded);
        var needed = columnsNeeded.ToList();
        bool output = needed.Any(c => c.Index == OutputIndex);
        var inputColumns = needed.Where(c => c.Index < OutputIndex).Select(c => input.Schema[c.Index]).ToList();
        var main = input.GetRowCursor(inputColumns);
        DataViewRowCursor? ahead = null;
        if (output)
        {
            try
            {
                ahead = input.GetRowCursor([input.Schema[parent.InputColumnName]]);
            }
            catch
            {
                main.Dispose();
                throw;
            }
        }
        return new Cursor(this, main, ahead);
    }

    public DataViewRowCursor[] GetRowCursorSet(IEnumerable<DataViewSchema.Column> columnsNeeded, int n, Random? rand = null) =>
        [GetRowCursor(columnsNeeded, rand)];

    private sealed class Cursor : DataViewRowCursor
    {
        private readonly EncodedDataView view;
        private readonly DataViewRowCursor main;
        private readonly DataViewRowCursor? ahead;
        private readonly ImageReader? read;
        private readonly int dimension;
        private float[] embeddings = [];
        private long bufferStart;
        private int bufferCount;
        private long row = -1;
        private bool disposed;

        public Cursor(EncodedDataView view, DataViewRowCursor main, DataViewRowCursor? ahead)
        {
            this.view = view;
            this.main = main;
            this.ahead = ahead;
            dimension = view.parent.Dimension;
            if (ahead is not null) read = view.parent.ReaderFor(ahead);
        }

        public override DataViewSchema Schema => view.Schema;

        public override long Position => main.Position;

        public override long Batch => main.Batch;

        public override ValueGetter<DataViewRowId> GetIdGetter() => main.GetIdGetter();

        public override bool IsColumnActive(DataViewSchema.Column column) =>
            column.Index == view.OutputIndex ? ahead is not null : main.IsColumnActive(main.Schema[column.Index]);

        public override ValueGetter<TValue> GetGetter<TValue>(DataViewSchema.Column column)
        {
            if (column.Index != view.OutputIndex) return main.GetGetter<TValue>(main.Schema[column.Index]);
            if (ahead is null) throw new InvalidOperationException($"column '{column.Name}' was not asked for when the cursor was made");
            if (typeof(TValue) != typeof(VBuffer<float>))
                throw new InvalidOperationException($"column '{column.Name}' holds VBuffer<float>, not {typeof(TValue).Name}");
            ValueGetter<VBuffer<float>> getter = (ref VBuffer<float> value) =>
            {
                if (row < bufferStart || row >= bufferStart + bufferCount) throw new InvalidOperationException("the cursor is not on a row");
                var editor = VBufferEditor.Create(ref value, dimension);
                embeddings.AsSpan((int)(row - bufferStart) * dimension, dimension).CopyTo(editor.Values);
                value = editor.Commit();
            };
            return (ValueGetter<TValue>)(Delegate)getter;
        }

        public override bool MoveNext()
        {
            if (disposed || !main.MoveNext()) return false;
            row++;
            if (ahead is not null && row >= bufferStart + bufferCount) Fill();
            return true;
        }

        /// <summary>Reads the next batch of images from the look-ahead cursor and embeds them in one call.</summary>
        private void Fill()
        {
            var loads = new List<Action<Span<float>>>(view.parent.Encoder.MaxBatch);
            while (loads.Count < view.parent.Encoder.MaxBatch && ahead!.MoveNext()) loads.Add(read!());
            if (loads.Count == 0)
                throw new InvalidOperationException("the input gave more rows to one cursor than to another: the embeddings cannot be matched to rows");
            if (embeddings.Length < loads.Count * dimension) embeddings = new float[view.parent.Encoder.MaxBatch * dimension];
            bufferStart = row;
            bufferCount = loads.Count;
            view.parent.Encoder.EmbedMany(loads.Count, (i, destination) => loads[i](destination),
                                          (i, embedding) => embedding.CopyTo(embeddings.AsSpan(i * dimension, dimension)));
        }

        protected override void Dispose(bool disposing)
        {
            if (disposed) return;
            disposed = true;
            if (disposing)
            {
                main.Dispose();
                ahead?.Dispose();
            }
            base.Dispose(disposing);
        }
    }
}
