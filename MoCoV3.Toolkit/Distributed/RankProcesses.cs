using System.Runtime.InteropServices;
using System.Text;

namespace MoCoV3.Distributed;

/// <summary>
/// Which process each rank is, "rank r: pid P on HOST", gathered from every rank: logged at the start of a data-parallel
/// run, so that a launcher's report of a dead process by its pid (MPICH's does) reads back to the rank.
/// </summary>
public static class RankProcesses
{
    private const int HostBytes = 64;

    /// <summary>Every rank's process, by rank. A collective: every rank must call it.</summary>
    public static IReadOnlyList<string> Gather(ICommunicator ranks)
    {
        var local = new long[1 + HostBytes / sizeof(long)];
        local[0] = Environment.ProcessId;
        byte[] host = Encoding.UTF8.GetBytes(Environment.MachineName);
        host.AsSpan(0, Math.Min(host.Length, HostBytes - 1)).CopyTo(MemoryMarshal.AsBytes(local.AsSpan(1)));
        var all = new long[local.Length * ranks.Size];
        ranks.AllGather<long>(local, all);
        return [.. Enumerable.Range(0, ranks.Size).Select(r =>
        {
            var entry = all.AsSpan(r * local.Length, local.Length);
            string name = Encoding.UTF8.GetString(MemoryMarshal.AsBytes(entry[1..])).TrimEnd('\0');
            return $"rank {r}: pid {entry[0]} on {name}";
        })];
    }
}
