using MoCoV3.Training;

namespace MoCoV3.Tests.Training;

[TestClass]
public sealed class MetricsLogTests
{
    [TestMethod]
    public void ResumeKeepsRowsUpToTheCheckpointAndDropsARowCutShortByAKill()
    {
        string path = Path.Combine(TestData.NewFolder(), "metrics.csv");
        File.WriteAllText(path, string.Join('\n',
            string.Join(',', MetricsLog.Columns),
            "1,0.5,3.1,0.001,0.99,2.5,100,1.5,,0.25,0.125,",
            "2,1,3.0,0.002,0.99,2.25,100,3,0.5,0.5,0.25,grad_spike;loss_spike",
            "3,1.5,2.9,0.003,0.99,2,100,4.5,,0.75,0.375,",
            "4,2,2."));
        using (var log = new MetricsLog(path, resumeStep: 2))
        {
            Assert.AreEqual(2, log.Kept.Count);
            log.Write(new MetricsRow { Step = 3, Loss = 2.8, GradNormFirst = 0.5 });
        }
        var rows = MetricsLog.Read(path);
        CollectionAssert.AreEqual(new long[] { 1, 2, 3 }, rows.Select(r => r.Step).ToArray());
        Assert.AreEqual(0.125, rows[0].GradNormLast);
        Assert.AreEqual("grad_spike;loss_spike", rows[1].Warnings);
        Assert.AreEqual(0.5, rows[1].KnnTop1);
        Assert.AreEqual(2.8, rows[2].Loss);
        Assert.IsNull(rows[2].GradNormLast);
    }

    [TestMethod]
    public void FilesOfEarlierVersionsWithFewerColumnsStillRead()
    {
        string path = Path.Combine(TestData.NewFolder(), "metrics.csv");
        File.WriteAllText(path, "step,epoch,loss,lr,momentum,grad_norm,img_per_s,elapsed_s\n5,1,3.5,0.1,0.99,1.5,200,9\n");
        var row = MetricsLog.Read(path).Single();
        Assert.AreEqual(3.5, row.Loss);
        Assert.IsNull(row.KnnTop1);
        Assert.IsNull(row.GradNormFirst);
        Assert.AreEqual("", row.Warnings);
    }

    [TestMethod]
    public void ARowThatDoesNotParseInTheMiddleIsAnError()
    {
        string path = Path.Combine(TestData.NewFolder(), "metrics.csv");
        File.WriteAllText(path, "step,epoch,loss,lr,momentum,grad_norm,img_per_s,elapsed_s\n1,x,3.5,0.1,0.99,1.5,200,9\n2,1,3.5,0.1,0.99,1.5,200,9\n");
        var e = Assert.ThrowsExactly<InvalidDataException>(() => MetricsLog.Read(path));
        StringAssert.Contains(e.Message, "row 1 does not parse");
    }
}
