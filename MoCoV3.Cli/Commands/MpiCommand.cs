using System.CommandLine;
using System.Globalization;
using System.Text;
using System.Text.Json;
using MoCoV3.Distributed;
using MoCoV3.Runtime;

namespace MoCoV3.Cli.Commands;

/// <summary><c>mocov3 mpi check|bench</c>: checks an MPI installation and times its all-reduce (run under mpirun / mpiexec).</summary>
internal static class MpiCommand
{
    private static readonly JsonSerializerOptions Json = new() { PropertyNamingPolicy = JsonNamingPolicy.CamelCase };

    public static Command Create()
    {
        var library = new Option<string?>("--mpi-library")
        {
            Description = $"MPI library to load (default: {MpiLibraryLocator.EnvironmentVariable}, else the launcher's, else {MpiLibraryLocator.OpenMpiLibrary} then {MpiLibraryLocator.MpichLibrary})",
        };
        var check = new Command("check", "Run each collective on known data; every rank prints one JSON line of what it received") { library };
        check.SetAction(r => CliErrors.Run(() =>
        {
            TorchRuntime.Initialize("cpu", threads: 1);
            using var mpi = MpiCommunicator.World(r.GetValue(library));
            var result = CollectiveCheck.Run(mpi, LaunchEnvironment.FromProcess());
            // One write per line (Console.Out writes in pieces, which the launcher interleaves with other ranks' lines).
            using var stdout = Console.OpenStandardOutput();
            stdout.Write(Encoding.UTF8.GetBytes(JsonSerializer.Serialize(result, Json) + "\n"));
            return 0;
        }));

        var floats = new Option<int>("--floats") { Description = "Floats all-reduced (default: MoCo v3 ViT-S's trainable parameters)", DefaultValueFactory = _ => AllReduceBenchmark.VitSmallGradientFloats };
        var repeats = new Option<int>("--repeats") { Description = "Timed repetitions (after one warm-up)", DefaultValueFactory = _ => 5 };
        var json = new Option<bool>("--json") { Description = "Print one JSON line (rank 0)" };
        var bench = new Command("bench", "Time an in-place float all-reduce of a gradient-sized buffer against memcpy of the same bytes") { library, floats, repeats, json };
        bench.SetAction(r => CliErrors.Run(() =>
        {
            using var mpi = MpiCommunicator.World(r.GetValue(library));
            var result = AllReduceBenchmark.Run(mpi, r.GetValue(floats), r.GetValue(repeats));
            if (mpi.Rank != 0) return 0;
            Console.WriteLine(r.GetValue(json)
                ? JsonSerializer.Serialize(result, Json)
                : string.Create(CultureInfo.InvariantCulture,
                    $"all-reduce of {result.Floats:N0} floats ({result.Bytes / 1e6:F0} MB) over {result.Ranks} ranks, {result.Communicator}: " +
                    $"median {result.AllReduceSecondsMedian * 1e3:F1} ms (min {result.AllReduceSecondsMin * 1e3:F1} ms), " +
                    $"{result.AlgorithmGigabytesPerSecond:F2} GB/s algorithm, {result.BusGigabytesPerSecond:F2} GB/s bus; " +
                    $"memcpy of the same bytes median {result.MemcpySecondsMedian * 1e3:F1} ms (min {result.MemcpySecondsMin * 1e3:F1} ms), {result.MemcpyGigabytesPerSecond:F2} GB/s"));
            return 0;
        }));
        return new Command("mpi", "Check the MPI installation and time its all-reduce (data-parallel engine layer; run under mpirun or mpiexec)") { check, bench };
    }
}
