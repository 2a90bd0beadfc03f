using MoCoV3.Distributed;
using MoCoV3.Training;

namespace MoCoV3.Tests.Training;

/// <summary>The <c>--minutes</c> policy shared by pretraining and fine-tuning, on a simulated clock.</summary>
[TestClass]
public sealed class TimeBudgetPolicyTests
{
    /// <summary>Runs steps of <paramref name="secondsPerStep"/> (the first two 5× slower) until the budget fixes the length.</summary>
    private static (long Step, long Total) Run(TimeBudget budget, double secondsPerStep)
    {
        double clock = 0;
        for (long step = 1; step < 10_000; step++)
        {
            clock += step <= TimeBudget.WarmupSteps ? 5 * secondsPerStep : secondsPerStep;
            if (budget.OnStep(step, clock, clock) is long total) return (step, total);
        }
        throw new AssertFailedException("the budget never fixed the run length");
    }

    [TestMethod]
    public void FastStepsAreTimedFiftyTimesAndTheRestOfTheBudgetIsFilled()
    {
        var budget = new TimeBudget(10);   // 600 s; 0.1 s per step: 50 steps take 5 s, under min(30 s, 6 s)
        var (step, total) = Run(budget, 0.1);
        Assert.AreEqual(TimeBudget.WarmupSteps + TimeBudget.MaxTimedSteps, step);
        Assert.AreEqual(50, budget.TimedSteps);
        Assert.AreEqual(0.1, budget.SecondsPerStep, 1e-9);
        // 52 steps took 2 × 0.5 + 50 × 0.1 = 6 s; the remaining 594 s hold 5,940 more.
        Assert.AreEqual(52 + 5940, total, 1);
        Assert.IsNull(budget.OnStep(step + 1, 100, 100), "the length is fixed once");
        Assert.AreEqual(total, budget.TotalSteps);
    }

    [TestMethod]
    public void SlowStepsStopTimingAfterOnePercentOfAShortBudget()
    {
        var budget = new TimeBudget(5);    // 300 s: timing stops at min(30 s, 3 s) once 5 steps are timed
        var (step, total) = Run(budget, 1.0);
        Assert.AreEqual(TimeBudget.WarmupSteps + TimeBudget.MinTimedSteps, step);
        Assert.AreEqual(1.0, budget.SecondsPerStep, 1e-9);
        // 7 steps took 10 + 5 = 15 s; 285 s remain.
        Assert.AreEqual(7 + 285, total, 1);
    }

    [TestMethod]
    public void ABudgetSpentWhileTimingEndsTheRunWhereItIs()
    {
        var budget = new TimeBudget(0.05); // 3 s, less than the timing itself
        var (step, total) = Run(budget, 1.0);
        Assert.AreEqual(step, total);
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => new TimeBudget(0));
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => new TimeBudget(double.NaN));
    }

    /// <summary>
    /// Data-parallel: rank 0's clock decides. Rank 1 times steps 10× slower than rank 0 (as a rank that waits for rank 0's
    /// checkpoints would), yet fixes rank 0's length at rank 0's step, with rank 0's timing, because it takes the broadcast.
    /// </summary>
    [TestMethod]
    public void EveryRankTakesTheLengthRankZerosClockFixes()
    {
        var rank0 = new TimeBudget(5);
        var wire = new ScriptedBroadcast(rank: 0);
        double clock = 0;
        long fixedAt = 0, total = 0;
        var sent = new List<double[]>();
        for (long step = 1; fixedAt == 0; step++)
        {
            clock += 1.0;
            if (rank0.OnStep(step, clock, clock, wire) is long t) (fixedAt, total) = (step, t);
            sent.Add(wire.Last!);
        }
        Assert.AreEqual(TimeBudget.WarmupSteps + TimeBudget.MinTimedSteps, fixedAt);
        Assert.AreEqual(fixedAt, sent.Count, "one broadcast per step until the length is fixed");
        Assert.IsTrue(sent.Take(sent.Count - 1).All(d => d[0] == -1), "nothing fixed before");
        CollectionAssert.AreEqual(new double[] { total, rank0.TimedSteps, rank0.SecondsPerStep }, sent[^1]);

        var rank1 = new TimeBudget(5);
        var listener = new ScriptedBroadcast(rank: 1, sent);
        double slowClock = 0;
        for (long step = 1; step <= fixedAt; step++)
        {
            slowClock += 10.0;
            long? decided = rank1.OnStep(step, slowClock, slowClock, listener);
            Assert.AreEqual(step == fixedAt ? total : null, decided, $"step {step}");
        }
        Assert.AreEqual(total, rank1.TotalSteps);
        Assert.AreEqual(rank0.SecondsPerStep, rank1.SecondsPerStep);
        var alone = new TimeBudget(5);
        long? ownTotal = null;
        for (long step = 1; ownTotal is null; step++) ownTotal = alone.OnStep(step, 10.0 * step, 10.0 * step);
        Assert.IsTrue(ownTotal < total / 5, $"its own clock would fix another length: {ownTotal} against {total}");
        Assert.IsNull(rank1.OnStep(fixedAt + 1, 1e6, 1e6, listener), "fixed once; no broadcast after");
        Assert.AreEqual(fixedAt, listener.Calls);
    }

    /// <summary>One rank's side of a two-rank broadcast: rank 0's records what it sends, another rank's receives <paramref name="script"/>.</summary>
    private sealed class ScriptedBroadcast(int rank, IReadOnlyList<double[]>? script = null) : ICommunicator
    {
        public int Calls { get; private set; }
        public double[]? Last { get; private set; }
        public int Rank => rank;
        public int Size => 2;
        public string Description => "scripted";

        public void Broadcast<T>(Span<T> buffer, int root) where T : unmanaged
        {
            Assert.AreEqual(0, root);
            var values = System.Runtime.InteropServices.MemoryMarshal.Cast<T, double>(buffer);
            if (rank == 0) Last = values.ToArray();
            else script![Calls].CopyTo(values);
            Calls++;
        }

        public void AllReduceSum<T>(Span<T> buffer) where T : unmanaged => throw new NotSupportedException();
        public void AllGather<T>(ReadOnlySpan<T> local, Span<T> all) where T : unmanaged => throw new NotSupportedException();
        public void Barrier() => throw new NotSupportedException();
        public void Dispose() { }
    }
}
