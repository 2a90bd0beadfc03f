using MoCoV3.Training;

namespace MoCoV3.Tests.Training;

[TestClass]
public sealed class TensorBoardResumeTests
{
    /// <summary>(step, tag) of every scalar in the event files of <paramref name="folder"/>, read as TensorBoard would.</summary>
    private static List<(long Step, string Tag)> Scalars(string folder)
    {
        var found = new List<(long, string)>();
        foreach (string path in Directory.EnumerateFiles(folder).Order())
        {
            byte[] bytes = File.ReadAllBytes(path);
            for (int at = 0; at < bytes.Length;)
            {
                int length = (int)System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(bytes.AsSpan(at));
                var e = Tensorboard.Event.Parser.ParseFrom(bytes, at + 12, length);
                if (e.Summary is not null) found.AddRange(e.Summary.Value.Select(v => (e.Step, v.Tag)));
                at += 16 + length;
            }
        }
        return found;
    }

    [TestMethod]
    public void AResumedRunLogsEachStepOnceInTensorBoard()
    {
        TestData.RequireFashionMnist();
        string dir = TestData.NewFolder();
        var preset = TestPresets.Get("vit-tiny-fmnist").WithVit(vit => vit with { PatchSize = 7, EmbedDim = 32, Depth = 1, Heads = 2 }).WithHeads(heads => heads with { HiddenDim = 64, OutDim = 32 });
        var options = new PretrainOptions
        {
            OutputDir = dir,
            Batch = 32,
            MaxSteps = 6,
            LogEvery = 1,
            SaveEvery = 2,
            TensorBoard = true,
            Data = new() { Limit = 256 },
            Compute = new() { Threads = 1 },
        };
        var crashing = new Pretrainer();
        // A crash after step 5 was logged: the checkpoint is the one of step 4.
        crashing.Logged += (row, _) => { if (row.Step == 5) throw new IOException("simulated crash"); };
        Assert.ThrowsExactly<IOException>(() => crashing.Run(preset, options));
        Assert.AreEqual(1, Scalars(Path.Combine(dir, "tb")).Count(s => s.Tag == "train/loss" && s.Step == 5));

        new Pretrainer().Run(preset, options with { Resume = "auto" });
        var losses = Scalars(Path.Combine(dir, "tb")).Where(s => s.Tag == "train/loss").Select(s => s.Step).Order().ToArray();
        CollectionAssert.AreEqual(new long[] { 1, 2, 3, 4, 5, 6 }, losses);
    }
}
