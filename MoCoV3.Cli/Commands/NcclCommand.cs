using System.CommandLine;
using System.Globalization;
using System.Text;
using System.Text.Json;
using MoCoV3.Distributed;
using MoCoV3.Runtime;
using MoCoV3.Training;

namespace MoCoV3.Cli.Commands;

/// <summary>
/// <c>mocov3 nccl check|bench|compare</c>: NCCL's collectives on known data and its all-reduce timed (run under mpirun or a
/// torchrun-style launcher on a GPU machine), and how far two pretraining runs are apart (np=2 against np=1).
/// </summary>
internal static class NcclCommand
{
    private static readonly JsonSerializerOptions Json = new() { PropertyNamingPolicy = JsonNamingPolicy.CamelCase };

    public static Command Create()
    {
        var device = new Option<string>("--device") { Description = "cuda (cuda:LOCAL_RANK under a launcher) or cuda:N", DefaultValueFactory = _ => "cuda" };
        var libtorch = new Option<string?>("--libtorch") { Description = $"CUDA libtorch folder, e.g. PyTorch's torch/lib (default: {TorchRuntime.LibTorchEnvironmentVariable}); NCCL is looked for next to it" };
        var check = new Command("check", "Run each NCCL collective on known data; every rank prints one JSON line of what it received") { device, libtorch };
        check.SetAction(r => CliErrors.Run(() =>
        {
            var (owner, nccl) = Open(r.GetValue(device)!, r.GetValue(libtorch));
            using (owner)
            {
                var result = NcclCheck.Run(nccl);
                using var stdout = Console.OpenStandardOutput();   // one write per line: ranks' lines do not interleave
                stdout.Write(Encoding.UTF8.GetBytes(JsonSerializer.Serialize(result, Json) + "\n"));
                return result.Ok ? 0 : 1;
            }
        }));

        var floats = new Option<int>("--floats") { Description = "Floats all-reduced (default: MoCo v3 ViT-S's trainable parameters)", DefaultValueFactory = _ => AllReduceBenchmark.VitSmallGradientFloats };
        var repeats = new Option<int>("--repeats") { Description = "Timed repetitions (after one warm-up)", DefaultValueFactory = _ => 10 };
        var bench = new Command("bench", "Time an in-place float all-reduce of a gradient-sized CUDA buffer over NCCL (rank 0 prints one JSON line)") { device, libtorch, floats, repeats };
        bench.SetAction(r => CliErrors.Run(() =>
        {
            var (owner, nccl) = Open(r.GetValue(device)!, r.GetValue(libtorch));
            using (owner)
            {
                var result = NcclCheck.Time(nccl, r.GetValue(floats), r.GetValue(repeats));
                if (nccl.Rank == 0) Console.WriteLine(JsonSerializer.Serialize(result, Json));
                return 0;
            }
        }));

        var reference = new Argument<string>("reference") { Description = "Run folder (metrics.csv, checkpoint.ckpt) of the reference, e.g. np=1" };
        var other = new Argument<string>("other") { Description = "Run folder of the run compared with it, e.g. np=2" };
        var compare = new Command("compare", "How far two pretraining runs are apart: per-step loss and gradient norm, final weights (exit 1 outside the CPU acceptance test's bounds on losses and weights)") { reference, other };
        compare.SetAction(r => CliErrors.Run(() =>
        {
            TorchRuntime.Initialize("cpu", threads: 1);
            var result = RunComparison.Compare(r.GetValue(reference)!, r.GetValue(other)!);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{(result.WithinCpuBounds ? "SAME" : "DIFFERENT")}: {result.Steps} steps, loss {result.FirstLoss:F4} -> {result.LastLoss:F4}; " +
                $"loss rel diff {result.LossRelativeDiff:E1} (bound 1e-4), grad norm rel diff {result.GradNormRelativeDiff:E1} (not bounded); " +
                $"weights max|dw| {result.WeightMaxDiff:E1} in {result.WorstParameter} (bound 1e-3 x max|w| {result.WeightMaxAbs:F3}); " +
                $"BatchNorm statistics max|d| {result.BufferMaxDiff:E1} (max {result.BufferMaxAbs:F3})"));
            return result.WithinCpuBounds ? 0 : 1;
        }));
        return new Command("nccl", "Check NCCL and time its all-reduce on CUDA tensors (run under mpirun or a torchrun-style launcher); compare two runs") { check, bench, compare };
    }

    private static (IDisposable Owner, NcclCommunicator Nccl) Open(string device, string? libtorch)
    {
        var launch = LaunchEnvironment.FromProcess();
        var compute = new ComputeOptions { Device = NcclBootstrap.RankDevice(device, launch), LibTorch = libtorch, Threads = 1 };
        if (!compute.Device.StartsWith("cuda", StringComparison.Ordinal)) throw new ArgumentException($"NCCL takes CUDA tensors: --device cuda or cuda:N, not {device}");
        TorchRuntime.Initialize(compute);
        if (launch.Launcher == Launcher.None)   // NCCL at one rank, its unique id made here
        {
            var alone = new NcclCommunicator(launch, NcclBootstrap.CudaIndex(compute.Device), new SingleProcessCommunicator(), libtorchDir: libtorch);
            return (alone, alone);
        }
        var context = DistributedContext.Open(compute: compute);
        return (context, (NcclCommunicator)context.Communicator);
    }
}
