using Microsoft.ML.OnnxRuntime;

namespace MoCoV3.Inference;

/// <summary>
/// The ONNX Runtime session options this toolkit uses for CPU inference, in one place (<see cref="OnnxModelRunner"/>,
/// MoCoV3.Export's <c>OnnxBenchmark</c>, the verifier): every graph optimisation (<c>ORT_ENABLE_ALL</c>: constant folding,
/// LayerNorm/GELU/MatMul+scale fusions, the int8 <c>DynamicQuantizeMatMul</c> fusion, NCHWc layouts), one intra-op thread
/// per physical core (hyper-threads share a core's vector units and only add contention), sequential execution (a
/// backbone is a chain; parallel branches would only oversubscribe the cores), and the memory pattern and CPU arena
/// on (a fixed input shape reuses one planned block per run).
/// </summary>
public static class OrtCpuOptions
{
    /// <summary>Physical cores of this machine (Linux: distinct physical id/core id pairs of /proc/cpuinfo), else logical processors.</summary>
    public static int PhysicalCores { get; } = CountPhysicalCores();

    /// <summary>
    /// Options for CPU inference. <paramref name="threads"/>: intra-op threads (default <see cref="PhysicalCores"/>).
    /// <paramref name="optimizedModelPath"/>: also write the graph after ORT's optimisations there (to see what fused).
    /// </summary>
    public static SessionOptions Create(int? threads = null, string? optimizedModelPath = null)
    {
        if (threads is <= 0) throw new ArgumentException($"threads must be positive, found {threads}");
        var options = new SessionOptions
        {
            GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
            ExecutionMode = ExecutionMode.ORT_SEQUENTIAL,
            IntraOpNumThreads = threads ?? PhysicalCores,
            InterOpNumThreads = 1,
            EnableMemoryPattern = true,
            EnableCpuMemArena = true,
        };
        if (optimizedModelPath is not null) options.OptimizedModelFilePath = optimizedModelPath;
        return options;
    }

    /// <summary>ORT's own defaults (no options set), the baseline MoCoV3.Export's <c>OnnxBenchmark</c> compares against.</summary>
    public static SessionOptions Default() => new();

    private static int CountPhysicalCores()
    {
        try
        {
            if (OperatingSystem.IsLinux() && File.Exists("/proc/cpuinfo"))
            {
                var cores = new HashSet<(string, string)>();
                string physical = "0", core = "";
                foreach (var line in File.ReadLines("/proc/cpuinfo"))
                {
                    int colon = line.IndexOf(':');
                    if (colon < 0)
                    {
                        if (core.Length > 0) cores.Add((physical, core));
                        physical = "0";
                        core = "";
                        continue;
                    }
                    string key = line[..colon].Trim(), value = line[(colon + 1)..].Trim();
                    if (key == "physical id") physical = value;
                    else if (key == "core id") core = value;
                }
                if (core.Length > 0) cores.Add((physical, core));
                if (cores.Count > 0) return Math.Min(cores.Count, Environment.ProcessorCount);
            }
        }
        catch (IOException)
        {
            // fall through to the logical count
        }
        return Math.Max(1, Environment.ProcessorCount);
    }
}
