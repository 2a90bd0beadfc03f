using MoCoV3.Data;
using TorchSharp;
using static TorchSharp.torch;

namespace MoCoV3.Tests.Data;

[TestClass]
public sealed class PrefetchLoaderTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(20);

    /// <summary>Images of 1x2x2 whose 4 pixels all equal the image index; label = index % 3.</summary>
    private static InMemoryImageDataset Numbered(int count)
    {
        var pixels = new byte[count * 4];
        for (int i = 0; i < count; i++)
            pixels.AsSpan(i * 4, 4).Fill((byte)i);
        return new InMemoryImageDataset("numbered", pixels, Enumerable.Range(0, count).Select(i => i % 3).ToArray(),
            1, 2, 2, ["a", "b", "c"]);
    }

    /// <summary>Wraps a dataset: counts ReadBatch calls, can sleep in them and fail on one index.</summary>
    private sealed class TestDataset(IImageDataset inner, int delayMs = 0, int failOnIndex = -1) : IImageDataset
    {
        private int _reads;
        public int Reads => Volatile.Read(ref _reads);
        public string Source => inner.Source;
        public int Count => inner.Count;
        public int Channels => inner.Channels;
        public int Height => inner.Height;
        public int Width => inner.Width;
        public IReadOnlyList<string> ClassNames => inner.ClassNames;

        public void ReadBatch(ReadOnlySpan<int> indices, Span<byte> pixels, Span<long> labels)
        {
            Interlocked.Increment(ref _reads);
            if (delayMs > 0)
                Thread.Sleep(delayMs);
            if (indices.Contains(failOnIndex))
                throw new DataFormatException("poisoned.png", 7, $"image {failOnIndex} is poisoned");
            inner.ReadBatch(indices, pixels, labels);
        }
    }

    private static List<int[]> Indices(PrefetchLoader loader, int epoch, int startStep = 0)
    {
        var result = new List<int[]>();
        foreach (ImageBatch batch in loader.Epoch(epoch, startStep))
        {
            using (batch)
                result.Add(batch.Indices.ToArray());
        }
        return result;
    }

    [TestMethod]
    public void EveryIndexAppearsOncePerEpochWithMatchingTensors()
    {
        using var loader = new PrefetchLoader(Numbered(23), batchSize: 5, seed: 7, dropLast: false);
        Assert.AreEqual(5, loader.StepsPerEpoch);

        var seen = new List<int>();
        int step = 0;
        foreach (ImageBatch batch in loader.Epoch(3))
        {
            using (batch)
            {
                int b = step < 4 ? 5 : 3;
                Assert.AreEqual(3, batch.Epoch);
                Assert.AreEqual(step, batch.StepInEpoch);
                CollectionAssert.AreEqual(new long[] { b, 1, 2, 2 }, batch.Pixels.shape);
                Assert.AreEqual(ScalarType.Byte, batch.Pixels.dtype);
                CollectionAssert.AreEqual(new long[] { b }, batch.Labels.shape);
                Assert.AreEqual(ScalarType.Int64, batch.Labels.dtype);
                byte[] pixels = batch.Pixels.data<byte>().ToArray();
                long[] labels = batch.Labels.data<long>().ToArray();
                for (int i = 0; i < b; i++)
                {
                    int index = batch.Indices[i];
                    Assert.IsTrue(pixels.AsSpan(i * 4, 4).ToArray().All(p => p == index), $"pixels of image {index}");
                    Assert.AreEqual(index % 3, labels[i]);
                }
                seen.AddRange(batch.Indices);
                Assert.IsTrue(batch.WaitSeconds >= 0);
            }
            step++;
        }

        Assert.AreEqual(5, step);
        CollectionAssert.AreEqual(Enumerable.Range(0, 23).ToArray(), seen.Order().ToArray());
        CollectionAssert.AreNotEqual(Enumerable.Range(0, 23).ToArray(), seen.ToArray(), "shuffled");
    }

    [TestMethod]
    public void DropLastLeavesOutTheIncompleteBatch()
    {
        using var loader = new PrefetchLoader(Numbered(23), batchSize: 5, seed: 7);

        List<int[]> batches = Indices(loader, 0);

        Assert.AreEqual(4, loader.StepsPerEpoch);
        Assert.AreEqual(4, batches.Count);
        Assert.IsTrue(batches.All(b => b.Length == 5));
        int[] all = batches.SelectMany(b => b).ToArray();
        Assert.AreEqual(20, all.Distinct().Count());
        // The dropped images are the tail of the epoch's order.
        CollectionAssert.AreEqual(loader.EpochOrder(0)[..20], all);
    }

    [TestMethod]
    public void OrderDependsOnlyOnSeedAndEpoch()
    {
        using var a = new PrefetchLoader(Numbered(50), 10, seed: 123);
        using var b = new PrefetchLoader(Numbered(50), 10, seed: 123, prefetch: 1);
        using var otherSeed = new PrefetchLoader(Numbered(50), 10, seed: 124);

        CollectionAssert.AreEqual(a.EpochOrder(4), b.EpochOrder(4));
        CollectionAssert.AreEqual(Indices(a, 4).SelectMany(x => x).ToArray(), Indices(b, 4).SelectMany(x => x).ToArray());
        CollectionAssert.AreNotEqual(a.EpochOrder(4), a.EpochOrder(5));
        CollectionAssert.AreNotEqual(a.EpochOrder(4), otherSeed.EpochOrder(4));
        CollectionAssert.AreEqual(Enumerable.Range(0, 50).ToArray(), a.EpochOrder(5).Order().ToArray());
    }

    [TestMethod]
    public void OrderIsPinned()
    {
        // A fixed value: the order must be the same in every process and on every runtime, or resumed runs would
        // see other batches. If this changes, checkpoints taken before the change resume on a different order.
        using var loader = new PrefetchLoader(Numbered(10), 2, seed: 42);

        // Cross-checked with an independent Python implementation of SplitMix64 + Lemire + Fisher-Yates.
        CollectionAssert.AreEqual(new[] { 0, 3, 5, 7, 9, 8, 2, 1, 4, 6 }, loader.EpochOrder(0));
        CollectionAssert.AreEqual(new[] { 6, 5, 1, 4, 7, 3, 2, 9, 8, 0 }, loader.EpochOrder(1));
    }

    [TestMethod]
    public void WithoutShuffleTheOrderIsTheDatasetOrder()
    {
        using var loader = new PrefetchLoader(Numbered(7), 3, seed: 1, shuffle: false, dropLast: false);

        List<int[]> batches = Indices(loader, 9);

        CollectionAssert.AreEqual(Enumerable.Range(0, 7).ToArray(), batches.SelectMany(b => b).ToArray());
    }

    [TestMethod]
    public void ResumingAtAStepGivesTheTailOfTheEpoch()
    {
        using var loader = new PrefetchLoader(Numbered(40), 6, seed: 99, dropLast: false);
        List<int[]> full = Indices(loader, 2);

        for (int k = 0; k <= loader.StepsPerEpoch; k++)
        {
            var steps = new List<int>();
            var tail = new List<int[]>();
            foreach (ImageBatch batch in loader.Epoch(2, startStep: k))
            {
                using (batch)
                {
                    steps.Add(batch.StepInEpoch);
                    tail.Add(batch.Indices.ToArray());
                }
            }
            CollectionAssert.AreEqual(Enumerable.Range(k, loader.StepsPerEpoch - k).ToArray(), steps.ToArray());
            Assert.AreEqual(full.Count - k, tail.Count);
            for (int i = 0; i < tail.Count; i++)
                CollectionAssert.AreEqual(full[k + i], tail[i], $"start {k}, batch {i}");
        }
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => loader.Epoch(2, loader.StepsPerEpoch + 1));
    }

    [TestMethod]
    public void ReadsAheadNoMoreThanPrefetch()
    {
        var data = new TestDataset(Numbered(100));
        using var loader = new PrefetchLoader(data, 5, seed: 1, prefetch: 2);
        using IEnumerator<ImageBatch> e = loader.Epoch(0).GetEnumerator();

        Assert.IsTrue(e.MoveNext());
        e.Current.Dispose();
        // 1 taken + 2 waiting in the channel + 1 read and waiting for room.
        Assert.IsTrue(SpinWait.SpinUntil(() => data.Reads == 4, Patience), $"reads: {data.Reads}");
        Thread.Sleep(100);
        Assert.AreEqual(4, data.Reads);
    }

    [TestMethod]
    public void AbandoningTheEnumerationStopsReading()
    {
        var data = new TestDataset(Numbered(100), delayMs: 5);
        using var loader = new PrefetchLoader(data, 2, seed: 1, prefetch: 2);

        var run = Task.Run(() =>
        {
            foreach (ImageBatch batch in loader.Epoch(0))
            {
                batch.Dispose();
                if (batch.StepInEpoch == 1)
                    break;
            }
        });

        Assert.IsTrue(run.Wait(Patience), "abandoning the epoch hung");
        int reads = data.Reads;
        Assert.IsTrue(reads < loader.StepsPerEpoch, $"reads: {reads}");
        Thread.Sleep(100);
        Assert.AreEqual(reads, data.Reads, "the reader went on after the enumeration was abandoned");
    }

    [TestMethod]
    public void DisposingTheLoaderMidEpochDoesNotHang()
    {
        var data = new TestDataset(Numbered(100), delayMs: 5);
        var loader = new PrefetchLoader(data, 2, seed: 1, prefetch: 3);
        IEnumerator<ImageBatch> e = loader.Epoch(0).GetEnumerator();
        Assert.IsTrue(e.MoveNext());
        e.Current.Dispose();

        var dispose = Task.Run(loader.Dispose);
        Assert.IsTrue(dispose.Wait(Patience), "Dispose hung");
        int reads = data.Reads;

        var next = Task.Run(() => Assert.ThrowsExactly<ObjectDisposedException>(() => e.MoveNext()));
        Assert.IsTrue(next.Wait(Patience), "MoveNext after Dispose hung");
        var end = Task.Run(e.Dispose);
        Assert.IsTrue(end.Wait(Patience), "disposing the enumerator hung");
        Thread.Sleep(50);
        Assert.AreEqual(reads, data.Reads);
        Assert.ThrowsExactly<ObjectDisposedException>(() => loader.Epoch(1));
    }

    [TestMethod]
    public void DisposingTheLoaderReleasesAConsumerWaitingForABatch()
    {
        var data = new TestDataset(Numbered(10), delayMs: 300);
        var loader = new PrefetchLoader(data, 2, seed: 1);
        var consumer = Task.Run(() =>
        {
            foreach (ImageBatch batch in loader.Epoch(0))
                batch.Dispose();
        });
        Assert.IsTrue(SpinWait.SpinUntil(() => data.Reads > 0, Patience));

        loader.Dispose();

        var error = Assert.ThrowsExactly<AggregateException>(() => consumer.Wait(Patience));
        Assert.IsInstanceOfType<ObjectDisposedException>(error.InnerException);
    }

    [TestMethod]
    public void ReaderExceptionSurfacesWithItsTypeAfterTheGoodBatches()
    {
        // Without shuffling, image 4 is in the third batch of 2.
        var data = new TestDataset(Numbered(10), failOnIndex: 4);
        using var loader = new PrefetchLoader(data, 2, seed: 1, shuffle: false);
        using IEnumerator<ImageBatch> e = loader.Epoch(0).GetEnumerator();

        Assert.IsTrue(e.MoveNext());
        e.Current.Dispose();
        Assert.IsTrue(e.MoveNext());
        e.Current.Dispose();
        var error = Assert.ThrowsExactly<DataFormatException>(() => e.MoveNext());

        Assert.AreEqual("poisoned.png", error.File);
        Assert.AreEqual(7L, error.Offset);
        Assert.IsFalse(e.MoveNext());
    }

    [TestMethod]
    public void CorruptImageFileSurfacesThroughTheLoader()
    {
        using var dir = new TempDir();
        string bad = dir.File("c", "bad.png");
        Directory.CreateDirectory(Path.GetDirectoryName(bad)!);
        File.WriteAllText(bad, "not a png");
        using var loader = new PrefetchLoader(new ImageFolderDataset(dir.Path, 8, 3), 1, seed: 1);

        var error = Assert.ThrowsExactly<DataFormatException>(() => Indices(loader, 0));

        Assert.AreEqual(bad, error.File);
    }

    [TestMethod]
    public void BatchesOutliveTheConsumersDisposeScope()
    {
        using var loader = new PrefetchLoader(Numbered(8), 4, seed: 5);
        var batches = new List<ImageBatch>();

        using (NewDisposeScope())
        {
            foreach (ImageBatch batch in loader.Epoch(0))
            {
                using Tensor doubled = batch.Pixels * 2; // work inside the scope, as a training step would
                batches.Add(batch);
            }
        }

        foreach (ImageBatch batch in batches)
        {
            using (batch)
            {
                Assert.IsFalse(batch.Pixels.IsInvalid, "the scope disposed a batch tensor");
                Assert.AreEqual((long)batch.Indices[0], batch.Pixels[0, 0, 0, 0].ToInt64());
            }
        }
    }

    [TestMethod]
    public void WaitSecondsMeasuresTheConsumersWait()
    {
        var data = new TestDataset(Numbered(20), delayMs: 50);
        using var loader = new PrefetchLoader(data, 2, seed: 1, prefetch: 3);
        using IEnumerator<ImageBatch> e = loader.Epoch(0).GetEnumerator();

        Assert.IsTrue(e.MoveNext());
        using (e.Current)
            Assert.IsTrue(e.Current.WaitSeconds >= 0.04, $"first wait {e.Current.WaitSeconds}");
        Assert.IsTrue(SpinWait.SpinUntil(() => data.Reads >= 4, Patience));
        Thread.Sleep(100); // let the 4th read finish and land in the channel
        Assert.IsTrue(e.MoveNext());
        using (e.Current)
            Assert.IsTrue(e.Current.WaitSeconds < 0.02, $"prefetched wait {e.Current.WaitSeconds}");
    }

    [TestMethod]
    public void TooFewImagesForABatchIsRefused()
    {
        var e = Assert.ThrowsExactly<ArgumentException>(() => new PrefetchLoader(Numbered(3), 4, seed: 1));

        StringAssert.Contains(e.Message, "3 image(s)");
        using var loader = new PrefetchLoader(Numbered(3), 4, seed: 1, dropLast: false);
        Assert.AreEqual(1, loader.StepsPerEpoch);
    }
}
