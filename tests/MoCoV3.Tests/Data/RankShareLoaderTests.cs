using MoCoV3.Augment;
using MoCoV3.Data;
using MoCoV3.Distributed;
using SkiaSharp;

namespace MoCoV3.Tests.Data;

/// <summary>
/// A loader that reads one rank's share of every global batch (data-parallel runs) delivers exactly those rows of the
/// batches a loader without a share delivers: indices, labels, pixels and host-cut views, the uneven last batch included.
/// </summary>
[TestClass]
public sealed class RankShareLoaderTests
{
    [TestMethod]
    public void RankSharesOfIdxBatchesAreTheWholeBatchesRowsUnevenLastBatchIncluded()
    {
        using var dir = new TempDir();
        // 19 Fashion-MNIST-like images of varied pixels: batches of 6 are 6, 6, 6 and a last one of 1 (a rank gets none of it).
        const int count = 19;
        var pixels = new byte[count * 28 * 28];
        new Random(4).NextBytes(pixels);
        TestFiles.WriteIdx(dir.File("train-images-idx3-ubyte"), [count, 28, 28], pixels);
        TestFiles.WriteIdx(dir.File("train-labels-idx1-ubyte"), [count], Enumerable.Range(0, count).Select(i => (byte)(i * 7 % 10)).ToArray());
        InMemoryImageDataset data = FashionMnist.Load(dir.Path, train: true);

        foreach (int ranks in new[] { 2, 4 })
            CompareShares(() => new PrefetchLoader(data, 6, seed: 11, dropLast: false), share => new PrefetchLoader(data, 6, seed: 11, dropLast: false, share: share),
                ranks, epochs: [0, 3], expectedSteps: 4);
    }

    [TestMethod]
    public void RankSharesOfAnImageFolderCarryTheWholeBatchesViews()
    {
        using var dir = new TempDir();
        // 14 JPEGs of different sizes in two classes; batches of 4 with the last (2 images, none for rank 0 of 3) kept.
        for (int i = 0; i < 14; i++)
        {
            Directory.CreateDirectory(dir.File(i % 2 == 0 ? "cats" : "dogs"));
            TestFiles.WritePhotoLike(dir.File(i % 2 == 0 ? "cats" : "dogs", $"{i:D2}.jpg"), 50 + 9 * i, 40 + 4 * i, seed: i, SKEncodedImageFormat.Jpeg);
        }
        var dataset = new ImageFolderDataset(dir.Path, 24, 3);
        var cropping = new ViewCropping(new RandomResizedCrop(24, 0.08), Seed: 5);
        CompareShares(() => new PrefetchLoader(dataset, 4, seed: 5, dropLast: false, views: cropping),
            share => new PrefetchLoader(dataset, 4, seed: 5, dropLast: false, views: cropping, share: share), ranks: 3, epochs: [1], expectedSteps: 4);
    }

    [TestMethod]
    public void AShareIsSpreadOverTheRanks()
    {
        Assert.AreEqual(BatchSlice.Of(32, 1, 4), new RankShare(1, 4).Of(32));
        Assert.AreEqual(new BatchSlice(1, 2, 5), new RankShare(1, 3).Of(5));
        Assert.AreEqual(new BatchSlice(0, 0, 1), new RankShare(0, 2).Of(1), "a rank may get no row of a last batch of one");
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => new RankShare(2, 2));
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => new RankShare(0, 0));
    }

    /// <summary>
    /// Every batch of each rank's loader is its <see cref="BatchSlice.Spread"/> rows of the whole loader's batch, and the
    /// ranks' rows together are the whole batch.
    /// </summary>
    private static void CompareShares(Func<PrefetchLoader> whole, Func<RankShare, PrefetchLoader> shared, int ranks, int[] epochs, int expectedSteps)
    {
        using var reference = whole();
        Assert.AreEqual(expectedSteps, reference.StepsPerEpoch);
        foreach (int epoch in epochs)
        {
            var full = reference.Epoch(epoch).ToList();
            try
            {
                Assert.AreEqual(expectedSteps, full.Count);
                Assert.AreNotEqual(full[^1].Count, full[0].Count, "the last batch is the smaller one");
                var covered = full.Select(b => new int[b.Count]).ToList();
                for (int rank = 0; rank < ranks; rank++)
                {
                    using var loader = shared(new RankShare(rank, ranks));
                    Assert.AreEqual(reference.StepsPerEpoch, loader.StepsPerEpoch);
                    int step = 0;
                    foreach (ImageBatch part in loader.Epoch(epoch))
                    {
                        using (part)
                        {
                            ImageBatch all = full[step];
                            var rows = BatchSlice.Spread(all.Count, rank, ranks);
                            string where = $"epoch {epoch} step {step}, rank {rank} of {ranks}";
                            Assert.AreEqual(step, part.StepInEpoch, where);
                            Assert.AreEqual(rows, part.Rows, where);
                            Assert.AreEqual(rows.Count, part.Count, where);
                            Assert.AreEqual(all.Count, part.GlobalCount, where);
                            Assert.IsTrue(all.Rows.IsWhole, where);
                            CollectionAssert.AreEqual(all.Indices.Skip(rows.Offset).Take(rows.Count).ToArray(), part.Indices.ToArray(), $"{where}: indices");
                            Assert.AreEqual(rows.Count, part.Pixels.shape[0], where);
                            if (rows.Count > 0)
                            {
                                CollectionAssert.AreEqual(all.Labels.narrow(0, rows.Offset, rows.Count).data<long>().ToArray(), part.Labels.data<long>().ToArray(), $"{where}: labels");
                                CollectionAssert.AreEqual(all.Pixels.narrow(0, rows.Offset, rows.Count).data<byte>().ToArray(), part.Pixels.data<byte>().ToArray(), $"{where}: pixels");
                            }
                            Assert.AreEqual(all.View2 is null, part.View2 is null, where);
                            if (all.View2 is not null && rows.Count > 0)
                                CollectionAssert.AreEqual(all.View2.narrow(0, rows.Offset, rows.Count).data<byte>().ToArray(), part.View2!.data<byte>().ToArray(), $"{where}: view 2");
                            for (int i = 0; i < rows.Count; i++)
                                covered[step][rows.Offset + i]++;
                        }
                        step++;
                    }
                    Assert.AreEqual(expectedSteps, step);
                }
                Assert.IsTrue(covered.All(rows => rows.All(c => c == 1)), "the ranks' rows together are each whole batch, once");
            }
            finally
            {
                foreach (ImageBatch batch in full)
                    batch.Dispose();
            }
        }
    }
}
