using System.Diagnostics;
using System.Runtime.ExceptionServices;
using System.Runtime.InteropServices;
using System.Threading.Channels;
using MoCoV3.Distributed;
using TorchSharp;
using static TorchSharp.torch;

namespace MoCoV3.Data;

/// <summary>
/// Delivers the batches of an epoch while reading the next ones on a background thread, <c>prefetch</c> batches ahead.
/// The order of an epoch is a permutation that depends only on (seed, epoch), the same in every process, so a run
/// resumed at a step gets exactly the batches an uninterrupted run would have got.
/// With a <see cref="RankShare"/> (data-parallel runs) the loader reads and decodes only that rank's rows of every global
/// batch: the same order, rows <c>order[step·B + offset ..][..count]</c>, so its batches are exactly those rows of the batches
/// a loader without a share delivers (<see cref="ImageBatch.Rows"/> says which), views included.
/// </summary>
/// <remarks>
/// Each enumeration of <see cref="Epoch"/> starts its own background reader when it is first advanced and stops it when
/// the enumeration ends or is abandoned (disposed). The consumer owns the batches it receives and must dispose them.
/// An exception of the dataset is rethrown, with its original type, by the <c>MoveNext</c> that would have returned
/// the failed batch. Disposing the loader stops every reader; an enumeration still in progress then throws
/// <see cref="ObjectDisposedException"/>.
/// </remarks>
public sealed class PrefetchLoader : IDisposable
{
    private readonly Lock _gate = new();
    private readonly HashSet<Run> _runs = [];
    private bool _disposed;

    /// <param name="dataset">Where the images come from; its <see cref="IImageDataset.ReadBatch"/> runs on a background thread.</param>
    /// <param name="batchSize">Images per batch.</param>
    /// <param name="seed">Seed of the per-epoch shuffling.</param>
    /// <param name="shuffle">Shuffle every epoch (otherwise the dataset order).</param>
    /// <param name="dropLast">Leave out the last, incomplete batch of an epoch (otherwise it is smaller).</param>
    /// <param name="prefetch">How many batches may wait ready for the consumer.</param>
    /// <param name="views">Cut two views of every image on the loader's threads (the dataset must be an
    /// <see cref="IViewDataset"/> that can): the batches then carry both; the step of a batch is
    /// <c>epoch * StepsPerEpoch + step in epoch</c>.</param>
    /// <param name="share">Read only this rank's rows of every global batch of <paramref name="batchSize"/> (null: the whole
    /// batch). The epoch order, the steps and the views do not depend on it.</param>
    /// <exception cref="ArgumentException">The dataset has not a single batch (with <paramref name="dropLast"/>, fewer
    /// images than <paramref name="batchSize"/>), or a batch would not fit a span, or views are asked of a dataset that
    /// cannot cut them.</exception>
    public PrefetchLoader(IImageDataset dataset, int batchSize, long seed, bool shuffle = true, bool dropLast = true,
        int prefetch = 3, ViewCropping? views = null, RankShare? share = null)
    {
        ArgumentNullException.ThrowIfNull(dataset);
        ArgumentOutOfRangeException.ThrowIfLessThan(batchSize, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(prefetch, 1);
        long batchBytes = (long)batchSize * dataset.Channels * dataset.Height * dataset.Width;
        if (batchBytes > int.MaxValue)
            throw new ArgumentException($"A batch of {batchSize} images of {dataset.Channels}x{dataset.Height}x{dataset.Width} "
                + $"takes {batchBytes} bytes, more than {int.MaxValue}", nameof(batchSize));

        if (views is not null && dataset is not IViewDataset { CanCutViews: true })
            throw new ArgumentException($"{dataset.Source}: views can be cut on the host only from image files (a folder or a CSV "
                + "manifest), not from this dataset", nameof(views));
        Dataset = dataset;
        Views = views;
        Share = share;
        BatchSize = batchSize;
        Seed = seed;
        Shuffle = shuffle;
        DropLast = dropLast;
        Prefetch = prefetch;
        StepsPerEpoch = dropLast ? dataset.Count / batchSize : (dataset.Count + batchSize - 1) / batchSize;
        if (StepsPerEpoch == 0)
            throw new ArgumentException($"{dataset.Source}: {dataset.Count} image(s) make no batch of {batchSize}"
                + (dropLast ? " (the last, incomplete batch is dropped)" : ""), nameof(batchSize));
    }

    public IImageDataset Dataset { get; }
    public int BatchSize { get; }
    public long Seed { get; }
    public bool Shuffle { get; }
    public bool DropLast { get; }
    public int Prefetch { get; }

    /// <summary>How the loader cuts two views of every image; null when it reads the images as they are.</summary>
    public ViewCropping? Views { get; }

    /// <summary>The rank whose rows of every global batch the loader reads; null when it reads whole batches.</summary>
    public RankShare? Share { get; }

    /// <summary>Batches per epoch.</summary>
    public int StepsPerEpoch { get; }

    /// <summary>
    /// The dataset indices in the order of <paramref name="epoch"/>: a Fisher–Yates shuffle driven by a SplitMix64
    /// generator seeded from (seed, epoch) alone (the identity when not shuffling).
    /// </summary>
    public int[] EpochOrder(int epoch)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(epoch);
        var order = new int[Dataset.Count];
        for (int i = 0; i < order.Length; i++)
            order[i] = i;
        if (!Shuffle)
            return order;
        var random = new SplitMix64(SplitMix64.Mix(SplitMix64.Mix((ulong)Seed) + (ulong)epoch));
        for (int i = order.Length - 1; i > 0; i--)
        {
            int j = random.NextBelow(i + 1);
            (order[i], order[j]) = (order[j], order[i]);
        }
        return order;
    }

    /// <summary>
    /// The batches of <paramref name="epoch"/> from step <paramref name="startStep"/> on. Reading starts when the
    /// enumeration is first advanced; each enumeration reads on its own.
    /// </summary>
    public IEnumerable<ImageBatch> Epoch(int epoch, int startStep = 0)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(epoch);
        ArgumentOutOfRangeException.ThrowIfNegative(startStep);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(startStep, StepsPerEpoch);
        ObjectDisposedException.ThrowIf(_disposed, this);
        return Enumerate(epoch, startStep);
    }

    /// <summary>Stops every background reader and disposes the batches they had ready. Does not wait for consumers.</summary>
    public void Dispose()
    {
        Run[] runs;
        lock (_gate)
        {
            if (_disposed)
                return;
            _disposed = true;
            runs = [.. _runs];
        }
        foreach (Run run in runs)
            Stop(run);
    }

    private IEnumerable<ImageBatch> Enumerate(int epoch, int startStep)
    {
        Run run = Start(epoch, startStep);
        try
        {
            while (true)
            {
                long waitStart = Stopwatch.GetTimestamp();
                ImageBatch? batch = run.Take();
                if (batch is null)
                    yield break;
                batch.WaitSeconds = Stopwatch.GetElapsedTime(waitStart).TotalSeconds;
                yield return batch;
            }
        }
        finally
        {
            Stop(run);
        }
    }

    private Run Start(int epoch, int startStep)
    {
        int[] order = EpochOrder(epoch);
        var run = new Run(Prefetch);
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            // A dedicated thread: it blocks while the channel is full, and as a new thread it has no TorchSharp
            // DisposeScope (scopes are per thread), so the tensors it creates belong to the consumer alone.
            run.Producer = Task.Factory.StartNew(() => Produce(run, order, epoch, startStep), CancellationToken.None,
                TaskCreationOptions.LongRunning, TaskScheduler.Default);
            _runs.Add(run);
        }
        return run;
    }

    private void Stop(Run run)
    {
        lock (run)
        {
            if (!run.Stopped)
            {
                run.Cancellation.Cancel();
                run.Producer.Wait(); // Produce catches everything, so this only waits.
                while (run.Channel.Reader.TryRead(out ImageBatch? left))
                    left.Dispose();
                run.Stopped = true;
                run.Cancellation.Dispose();
            }
        }
        lock (_gate)
            _runs.Remove(run);
    }

    private void Produce(Run run, int[] order, int epoch, int startStep)
    {
        ChannelWriter<ImageBatch> writer = run.Channel.Writer;
        try
        {
            for (int step = startStep; step < StepsPerEpoch; step++)
            {
                run.Token.ThrowIfCancellationRequested();
                ImageBatch batch = ReadBatch(order, epoch, step);
                try
                {
                    writer.WriteAsync(batch, run.Token).AsTask().GetAwaiter().GetResult();
                }
                catch
                {
                    batch.Dispose();
                    throw;
                }
            }
        }
        catch (OperationCanceledException) when (run.Token.IsCancellationRequested)
        {
            // Stopped: the enumeration was abandoned or the loader disposed.
        }
        catch (Exception e)
        {
            run.Error = ExceptionDispatchInfo.Capture(e);
        }
        finally
        {
            writer.TryComplete();
        }
    }

    private ImageBatch ReadBatch(int[] order, int epoch, int step)
    {
        int start = step * BatchSize;
        int globalCount = Math.Min(BatchSize, order.Length - start);
        BatchSlice rows = Share?.Of(globalCount) ?? BatchSlice.Whole(globalCount); // a rank may have no rows of a last, smaller batch
        int count = rows.Count;
        int[] indices = order.AsSpan(start + rows.Offset, count).ToArray();
        IImageDataset d = Dataset;
        Tensor pixels = torch.empty([count, d.Channels, d.Height, d.Width], dtype: ScalarType.Byte);
        Tensor labels = torch.empty([count], dtype: ScalarType.Int64);
        Tensor? view2 = Views is null ? null : torch.empty([count, d.Channels, d.Height, d.Width], dtype: ScalarType.Byte);
        try
        {
            // Read straight into the tensors' CPU storage. Views are cut for (seed, step, dataset index): the same in any share.
            if (count == 0)
                return new ImageBatch(pixels, labels, epoch, step, indices, view2, rows);
            if (Views is null)
                d.ReadBatch(indices, pixels.bytes, MemoryMarshal.Cast<byte, long>(labels.bytes));
            else
                ((IViewDataset)d).ReadViews(indices, Views, (long)epoch * StepsPerEpoch + step, pixels.bytes, view2!.bytes,
                    MemoryMarshal.Cast<byte, long>(labels.bytes));
            return new ImageBatch(pixels, labels, epoch, step, indices, view2, rows);
        }
        catch
        {
            pixels.Dispose();
            labels.Dispose();
            view2?.Dispose();
            throw;
        }
    }

    /// <summary>One enumeration of an epoch: its background reader and the channel between it and the consumer.</summary>
    private sealed class Run
    {
        public Run(int prefetch)
        {
            Channel = System.Threading.Channels.Channel.CreateBounded<ImageBatch>(new BoundedChannelOptions(prefetch)
            {
                FullMode = BoundedChannelFullMode.Wait,
                SingleWriter = true,
                SingleReader = false,
            });
            Token = Cancellation.Token;
        }

        public CancellationTokenSource Cancellation { get; } = new();
        public CancellationToken Token { get; }
        public Channel<ImageBatch> Channel { get; }
        public Task Producer { get; set; } = Task.CompletedTask;
        public bool Stopped { get; set; }
        public volatile ExceptionDispatchInfo? Error;

        /// <summary>The next batch, waiting for it if needed; null at the end of the epoch.</summary>
        public ImageBatch? Take()
        {
            ChannelReader<ImageBatch> reader = Channel.Reader;
            while (true)
            {
                if (reader.TryRead(out ImageBatch? batch))
                    return batch;
                bool more;
                try
                {
                    more = reader.WaitToReadAsync(Token).AsTask().GetAwaiter().GetResult();
                }
                catch (OperationCanceledException) when (Token.IsCancellationRequested)
                {
                    throw Disposed();
                }
                if (!more)
                {
                    if (Token.IsCancellationRequested)
                        throw Disposed();
                    Error?.Throw();
                    return null;
                }
            }
        }

        private static ObjectDisposedException Disposed() =>
            new(nameof(PrefetchLoader), "The loader was disposed while an epoch was being read.");
    }

    /// <summary>SplitMix64 (Steele, Lea, Flood 2014): small, fast, and the same on every platform and runtime.</summary>
    private struct SplitMix64(ulong state)
    {
        private ulong _state = state;

        public static ulong Mix(ulong z)
        {
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
            return z ^ (z >> 31);
        }

        public ulong Next() => Mix(_state += 0x9E3779B97F4A7C15UL);

        /// <summary>Uniform in [0, bound) without modulo bias (Lemire's multiply-and-reject).</summary>
        public int NextBelow(int bound)
        {
            ulong range = (ulong)bound;
            ulong high = Math.BigMul(Next(), range, out ulong low);
            if (low < range)
            {
                ulong threshold = (0UL - range) % range;
                while (low < threshold)
                    high = Math.BigMul(Next(), range, out low);
            }
            return (int)high;
        }
    }
}
