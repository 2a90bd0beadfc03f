using MoCoV3.Data;

namespace MoCoV3.Eval.Probe;

/// <summary>
/// What <see cref="LinearProbe.Run(ProbeOptions, Action{string}?, IProgress{ProbeProgress}?)"/> trains on and where it writes. The defaults are the ones <c>mocov3 probe</c> uses:
/// L-BFGS maximum entropy on standardised features, an L2 sweep on 10% of the training split held out, then a refit on
/// all of it with the best value.
/// </summary>
public sealed record ProbeOptions
{
    /// <summary>The exported encoder (<c>mocov3 export</c>): input <c>input</c> float32 [N,C,H,W], output <c>embedding</c> [N,D].</summary>
    public required string Encoder { get; init; }

    /// <summary>The dataset; <see cref="DataOptions.Limit"/> uses only the first N images of each split (quick runs).</summary>
    public DataOptions Data { get; init; } = new();

    /// <summary>Where <c>report.csv</c>, <c>confusion.png</c> and <c>probe.zip</c> go.</summary>
    public string OutputDir { get; init; } = "probe";

    /// <summary>Seeds the held-out split, ML.NET and the random-init baseline's weights.</summary>
    public long Seed { get; init; }

    /// <summary>
    /// The L2 weights tried on the held-out split; the best is refitted on the whole training split. ML.NET's L-BFGS adds
    /// ½·L2·‖w‖² to the loss summed (not averaged) over the rows, so with more rows the same weight regularises less.
    /// </summary>
    public IReadOnlyList<float> L2Candidates { get; init; } = [0.1f, 1f, 10f, 100f];

    /// <summary>
    /// Rows of the training split (after the hold-out) the L2 sweep fits on; <c>null</c> for all of them. Each candidate
    /// is scaled by <c>SweepRows / training rows</c> for the sweep, so that it regularises the subsample as much as the
    /// candidate itself regularises the final fit (ML.NET's L2 multiplies a loss summed over the rows). Measured on the
    /// 1496-step quickstart encoder, raw pixels and the random-init encoder (full Fashion-MNIST): 12,000 rows at 150
    /// iterations chose L2s whose final top-1 were within 0.04 points of the full sweep's, in a ninth of its time.
    /// </summary>
    public int? SweepRows { get; init; } = 12_000;

    /// <summary>L-BFGS iterations per sweep fit (at most); the final fit uses <see cref="MaxIterations"/>.</summary>
    public int SweepIterations { get; init; } = 150;

    /// <summary>The fraction of the training split held out to choose the L2 weight.</summary>
    public double HoldoutFraction { get; init; } = 0.1;

    /// <summary>
    /// The fraction of the images kept as the test split when the dataset has only one split (a CSV manifest, an image
    /// folder without <c>train</c>/<c>test</c> sub-folders).
    /// </summary>
    public double TestFraction { get; init; } = 0.2;

    /// <summary>
    /// L-BFGS iterations per fit (at most). 100 stopped short of the optimum on Fashion-MNIST (a 30-minute encoder: 82.5%
    /// at 100, 84.1% at 1000 iterations, 84.25% for PyTorch's L-BFGS run to convergence); 500 is within 0.1 point of 1000.
    /// </summary>
    public int MaxIterations { get; init; } = 500;

    /// <summary>Threads for featurizing and fitting; <c>null</c> for one per core.</summary>
    public int? Threads { get; init; }

    internal int ThreadCount => Threads is > 0 ? Threads.Value : Environment.ProcessorCount;

    /// <summary>Throws <see cref="ArgumentException"/> naming the first setting that cannot work.</summary>
    public void Validate()
    {
        if (string.IsNullOrWhiteSpace(Encoder)) throw new ArgumentException("the encoder path (--encoder) is empty");
        if (string.IsNullOrWhiteSpace(OutputDir)) throw new ArgumentException("the output folder (--out) is empty");
        if (Data.Limit is < 2) throw new ArgumentException($"--limit must be at least 2 images, found {Data.Limit}");
        if (Seed is < int.MinValue or > int.MaxValue) throw new ArgumentException($"--seed must fit in 32 bits (ML.NET's seeds are int), found {Seed}");
        if (L2Candidates.Count == 0) throw new ArgumentException("at least one L2 weight is needed");
        if (L2Candidates.Any(v => !(v >= 0) || float.IsInfinity(v)))
            throw new ArgumentException($"L2 weights must be finite and >= 0, found {string.Join(", ", L2Candidates)}");
        if (!(HoldoutFraction > 0 && HoldoutFraction < 1)) throw new ArgumentException($"the held-out fraction must be in (0, 1), found {HoldoutFraction}");
        if (!(TestFraction > 0 && TestFraction < 1)) throw new ArgumentException($"the test fraction must be in (0, 1), found {TestFraction}");
        if (MaxIterations < 1) throw new ArgumentException($"at least one L-BFGS iteration is needed, found {MaxIterations}");
        if (SweepIterations < 1) throw new ArgumentException($"at least one L-BFGS iteration per sweep fit is needed, found {SweepIterations}");
        if (SweepRows is < 2) throw new ArgumentException($"the sweep needs at least 2 rows, found {SweepRows}");
    }
}
