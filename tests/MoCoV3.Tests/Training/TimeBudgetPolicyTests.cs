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
}
