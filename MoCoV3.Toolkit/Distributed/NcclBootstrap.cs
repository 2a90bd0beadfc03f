using System.Globalization;
using System.Runtime.InteropServices;

namespace MoCoV3.Distributed;

/// <summary>
/// How the ranks agree on NCCL's 128-byte unique id. Under <c>mpirun</c> / <c>mpiexec</c>, rank 0 makes it and broadcasts it
/// over MPI. Under a <c>torchrun</c>-style launcher there is no MPI: every rank points NCCL's own bootstrap at
/// <c>NCCL_COMM_ID</c>=host:port and rank 0's NCCL listens there. <c>torchrun</c>'s own store already listens on
/// <c>MASTER_PORT</c>, so the bootstrap takes the next port (<c>MASTER_ADDR:MASTER_PORT+1</c>) unless <c>NCCL_COMM_ID</c> is set.
/// </summary>
public static partial class NcclBootstrap
{
    /// <summary>The <c>NCCL_COMM_ID</c> for a torchrun-style launch: the one given, else <c>MASTER_ADDR:(MASTER_PORT + 1)</c>.</summary>
    /// <exception cref="InvalidOperationException">MASTER_ADDR or MASTER_PORT is missing or MASTER_PORT is not a port below 65535.</exception>
    public static string CommId(IReadOnlyDictionary<string, string> variables)
    {
        if (variables.TryGetValue("NCCL_COMM_ID", out string? given) && !string.IsNullOrWhiteSpace(given)) return given;
        if (!variables.TryGetValue("MASTER_ADDR", out string? host) || string.IsNullOrWhiteSpace(host))
            throw new InvalidOperationException("a torchrun-style launch needs MASTER_ADDR (and MASTER_PORT) for NCCL's bootstrap, or NCCL_COMM_ID=host:port");
        if (!variables.TryGetValue("MASTER_PORT", out string? portText)
            || !int.TryParse(portText, NumberStyles.None, CultureInfo.InvariantCulture, out int port) || port < 1 || port >= 65535)
            throw new InvalidOperationException(
                $"a torchrun-style launch needs MASTER_PORT, a port below 65535 (NCCL's bootstrap listens on MASTER_PORT+1), not '{portText ?? "(unset)"}'");
        // An IPv6 literal is bracketed so that NCCL can tell the port from the address.
        if (host.Contains(':') && !host.StartsWith('[')) host = $"[{host}]";
        return string.Create(CultureInfo.InvariantCulture, $"{host}:{port + 1}");
    }

    /// <summary>
    /// The device a rank trains on: plain <c>cuda</c> under a launcher is <c>cuda:LOCAL_RANK</c> (one GPU per rank of a node);
    /// <c>cuda:N</c> and <c>cpu</c> are kept (e.g. several ranks sharing <c>cuda:0</c> in a test).
    /// </summary>
    public static string RankDevice(string device, LaunchEnvironment launch) =>
        device == "cuda" && launch.Launcher != Launcher.None ? $"cuda:{launch.LocalRank}" : device;

    /// <summary>The CUDA device index of <c>cuda:N</c> (0 for plain <c>cuda</c>).</summary>
    public static int CudaIndex(string device) =>
        device.StartsWith("cuda:", StringComparison.Ordinal) && int.TryParse(device.AsSpan(5), NumberStyles.None, CultureInfo.InvariantCulture, out int index) ? index : 0;

    /// <summary>
    /// The unique id every rank passes to <c>ncclCommInitRank</c>: rank 0's <paramref name="make"/>, broadcast over
    /// <paramref name="control"/> (MPI). Only rank 0 calls <paramref name="make"/>.
    /// </summary>
    public static byte[] ShareUniqueId(ICommunicator control, Func<byte[]> make)
    {
        byte[] id = control.Rank == 0 ? make() : new byte[NcclUniqueId.Bytes];
        if (id.Length != NcclUniqueId.Bytes) throw new ArgumentException($"an NCCL unique id has {NcclUniqueId.Bytes} bytes, not {id.Length}");
        if (control.Size > 1) control.Broadcast<byte>(id, root: 0);
        return id;
    }

    /// <summary>Sets <paramref name="name"/> in the C environment, where NCCL reads it (.NET's own copy is not the C one).</summary>
    internal static void SetNativeEnvironment(string name, string value)
    {
        if (setenv(name, value, 1) != 0) throw new InvalidOperationException($"setenv({name}) failed");
        Environment.SetEnvironmentVariable(name, value);
    }

    /// <summary><paramref name="name"/> as C code (NCCL) reads it.</summary>
    internal static string? NativeEnvironment(string name) => Marshal.PtrToStringUTF8(getenv(name));

    [LibraryImport("libc.so.6", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int setenv(string name, string value, int overwrite);

    [LibraryImport("libc.so.6", StringMarshalling = StringMarshalling.Utf8)]
    private static partial nint getenv(string name);
}
