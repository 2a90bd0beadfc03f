using System.Collections;
using System.Globalization;

namespace MoCoV3.Distributed;

/// <summary>
/// The launcher that started this process and the rank, world size and local rank it gave us, read from the environment
/// (nothing is initialised). Open MPI's variables win over PMI's (an Open MPI job under Slurm may carry both), and MPI's over
/// <c>torchrun</c>'s generic <c>RANK</c>/<c>WORLD_SIZE</c>.
/// </summary>
public sealed record LaunchEnvironment(Launcher Launcher, int Rank, int WorldSize, int LocalRank)
{
    public static LaunchEnvironment SingleProcess { get; } = new(Launcher.None, 0, 1, 0);

    /// <summary>This process's launch environment.</summary>
    public static LaunchEnvironment FromProcess()
    {
        var variables = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (DictionaryEntry e in Environment.GetEnvironmentVariables())
            variables[(string)e.Key] = e.Value as string ?? "";
        return Detect(variables);
    }

    /// <summary>The launch environment that <paramref name="variables"/> describe.</summary>
    /// <exception cref="InvalidOperationException">A launcher's variables are present but not a valid rank and world size.</exception>
    public static LaunchEnvironment Detect(IReadOnlyDictionary<string, string> variables)
    {
        if (variables.ContainsKey("OMPI_COMM_WORLD_RANK") || variables.ContainsKey("OMPI_COMM_WORLD_SIZE"))
            return Read(variables, Launcher.OpenMpi, "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_RANK");
        if (variables.ContainsKey("PMI_RANK") || variables.ContainsKey("PMI_SIZE"))
            return Read(variables, Launcher.Mpich, "PMI_RANK", "PMI_SIZE", "MPI_LOCALRANKID");
        if (variables.ContainsKey("RANK") && variables.ContainsKey("WORLD_SIZE"))
            return Read(variables, Launcher.Torchrun, "RANK", "WORLD_SIZE", "LOCAL_RANK");
        return SingleProcess;
    }

    private static LaunchEnvironment Read(IReadOnlyDictionary<string, string> variables, Launcher launcher,
                                          string rankName, string sizeName, string localRankName)
    {
        int rank = Integer(variables, rankName, launcher);
        int size = Integer(variables, sizeName, launcher);
        if (size < 1 || rank < 0 || rank >= size)
            throw new InvalidOperationException(
                $"{launcher} launch environment is inconsistent: {rankName}={rank} and {sizeName}={size} (the rank must lie in [0, size))");
        // Hydra sets MPI_LOCALRANKID, torchrun LOCAL_RANK; a launcher that omits it runs one node: the local rank is the rank.
        int localRank = variables.ContainsKey(localRankName) ? Integer(variables, localRankName, launcher) : rank;
        return new LaunchEnvironment(launcher, rank, size, localRank);
    }

    private static int Integer(IReadOnlyDictionary<string, string> variables, string name, Launcher launcher)
    {
        if (!variables.TryGetValue(name, out string? text))
            throw new InvalidOperationException($"{launcher} launch environment is incomplete: {name} is not set");
        if (!int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int value))
            throw new InvalidOperationException($"{launcher} launch environment: {name}='{text}' is not a non-negative integer");
        return value;
    }
}
