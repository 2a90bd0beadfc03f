namespace MoCoV3.Distributed;

/// <summary>
/// Which MPI library to load: the one named by an option or <see cref="EnvironmentVariable"/>; else the one that matches the
/// launcher that started us (loading the other would give every rank a world of its own); else Open MPI's, then MPICH's.
/// </summary>
public static class MpiLibraryLocator
{
    public const string EnvironmentVariable = "MOCOV3_MPI_LIBRARY";
    public const string OpenMpiLibrary = "libmpi.so.40";
    public const string MpichLibrary = "libmpich.so.12";

    /// <summary>The libraries to try, in order (file names for the dynamic loader, or paths).</summary>
    public static IReadOnlyList<string> Candidates(string? library, Launcher launcher)
    {
        if (!string.IsNullOrWhiteSpace(library)) return [library];
        string? fromEnvironment = Environment.GetEnvironmentVariable(EnvironmentVariable);
        if (!string.IsNullOrWhiteSpace(fromEnvironment)) return [fromEnvironment];
        return launcher switch
        {
            Launcher.OpenMpi => [OpenMpiLibrary],
            Launcher.Mpich => [MpichLibrary],
            _ => [OpenMpiLibrary, MpichLibrary],
        };
    }

    /// <summary>How to get the libraries in <paramref name="candidates"/>, for an error message.</summary>
    public static string InstallHint(IReadOnlyList<string> candidates)
    {
        var hints = new List<string>();
        if (candidates.Contains(OpenMpiLibrary)) hints.Add($"{OpenMpiLibrary} comes with Open MPI (Debian/Ubuntu: apt-get install openmpi-bin)");
        if (candidates.Contains(MpichLibrary)) hints.Add($"{MpichLibrary} comes with MPICH (Debian/Ubuntu: apt-get install mpich)");
        if (hints.Count == 0) hints.Add($"check the path given by --mpi-library or {EnvironmentVariable}");
        else hints.Add($"another MPI library can be named with {EnvironmentVariable}");
        return string.Join("; ", hints);
    }
}
