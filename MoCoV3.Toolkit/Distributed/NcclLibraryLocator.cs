namespace MoCoV3.Distributed;

/// <summary>
/// Where to look for NCCL (<c>libnccl.so.2</c>), in order: the library named by an option or <see cref="EnvironmentVariable"/>
/// (a file, or a folder holding <c>libnccl.so.2</c>); next to the CUDA libtorch (<c>--libtorch</c> / <c>MOCOV3_LIBTORCH</c>):
/// pip's <c>nvidia-nccl-cu12</c>/<c>-cu13</c> wheel puts it in <c>site-packages/nvidia/nccl/lib</c>, which is
/// <c>../../nvidia/nccl/lib</c> from PyTorch's <c>torch/lib</c>, then that folder itself; last, the dynamic loader's search.
/// </summary>
public static class NcclLibraryLocator
{
    public const string EnvironmentVariable = "MOCOV3_NCCL";
    public const string LibraryName = "libnccl.so.2";

    /// <summary>The libraries to try, in order (paths, then the bare name for the dynamic loader).</summary>
    /// <param name="library">An explicit library or folder (null: <see cref="EnvironmentVariable"/>).</param>
    /// <param name="libtorchDir">The libtorch folder (null: <c>MOCOV3_LIBTORCH</c>).</param>
    /// <param name="environment">Reads an environment variable (null: this process's).</param>
    public static IReadOnlyList<string> Candidates(string? library, string? libtorchDir, Func<string, string?>? environment = null)
    {
        environment ??= Environment.GetEnvironmentVariable;
        if (string.IsNullOrWhiteSpace(library)) library = environment(EnvironmentVariable);
        if (!string.IsNullOrWhiteSpace(library))
            return [library.EndsWith(".so", StringComparison.Ordinal) || library.Contains(".so.", StringComparison.Ordinal) ? library : Path.Combine(library, LibraryName)];
        if (string.IsNullOrWhiteSpace(libtorchDir)) libtorchDir = environment(Runtime.TorchRuntime.LibTorchEnvironmentVariable);
        var candidates = new List<string>();
        if (!string.IsNullOrWhiteSpace(libtorchDir))
        {
            string lib = Path.GetFullPath(libtorchDir);
            candidates.Add(Path.GetFullPath(Path.Combine(lib, "..", "..", "nvidia", "nccl", "lib", LibraryName)));
            candidates.Add(Path.Combine(lib, LibraryName));
        }
        candidates.Add(LibraryName);
        return candidates;
    }

    /// <summary>The error for libraries none of which loaded: each candidate with why it failed, and how to name another.</summary>
    public static string NotFound(IReadOnlyList<string> candidates, IReadOnlyList<string> failures) =>
        $"NCCL could not be loaded; looked for {string.Join("; ", candidates.Select((c, i) => $"{c} ({(i < failures.Count ? failures[i] : "not tried")})"))}. " +
        $"NCCL comes with PyTorch's CUDA wheels (site-packages/nvidia/nccl/lib/{LibraryName}): point --libtorch or MOCOV3_LIBTORCH at that " +
        $"PyTorch's torch/lib, or name the library (or its folder) with {EnvironmentVariable}";
}
