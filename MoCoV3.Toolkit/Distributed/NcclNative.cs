using System.Runtime.InteropServices;

namespace MoCoV3.Distributed;

/// <summary>NCCL's <c>ncclDataType_t</c> (nccl.h).</summary>
internal enum NcclDataType
{
    Int8 = 0, Uint8 = 1, Int32 = 2, Uint32 = 3, Int64 = 4, Uint64 = 5, Float16 = 6, Float32 = 7, Float64 = 8, Bfloat16 = 9,
}

/// <summary>NCCL's built-in <c>ncclRedOp_t</c> (nccl.h; <c>ncclAvg</c> since NCCL 2.10).</summary>
internal enum NcclReduceOp
{
    Sum = 0, Prod = 1, Max = 2, Min = 3, Avg = 4,
}

/// <summary>NCCL's <c>ncclUniqueId</c>: 128 opaque bytes (<c>NCCL_UNIQUE_ID_BYTES</c>), passed by value to <c>ncclCommInitRank</c>.</summary>
[StructLayout(LayoutKind.Sequential, Size = Bytes)]
internal unsafe struct NcclUniqueId
{
    public const int Bytes = 128;
    public fixed byte Data[Bytes];
}

/// <summary>
/// The part of NCCL's C API (nccl.h, NCCL ≥ 2.10) the collectives use, bound at run time from the library
/// <see cref="NcclLibraryLocator"/> finds. <c>ncclComm_t</c> and <c>cudaStream_t</c> are pointers; enums and
/// <c>ncclResult_t</c> are C <c>int</c>s; counts are <c>size_t</c>.
/// </summary>
internal sealed unsafe class NcclNative
{
    public required string Library { get; init; }
    /// <summary>NCCL's version code, e.g. 22703 for 2.27.3.</summary>
    public int VersionCode { get; private set; }
    public string Version => $"NCCL {VersionCode / 10000}.{VersionCode / 100 % 100}.{VersionCode % 100}";

    public delegate* unmanaged<int*, int> GetVersion { get; private init; }
    public delegate* unmanaged<NcclUniqueId*, int> GetUniqueId { get; private init; }
    public delegate* unmanaged<nint*, int, NcclUniqueId, int, int> CommInitRank { get; private init; }
    public delegate* unmanaged<nint, int> CommDestroy { get; private init; }
    public delegate* unmanaged<nint, int> CommAbort { get; private init; }
    public delegate* unmanaged<nint, int*, int> CommGetAsyncError { get; private init; }
    public delegate* unmanaged<void*, void*, nuint, int, int, nint, nint, int> AllReduce { get; private init; }
    public delegate* unmanaged<void*, void*, nuint, int, nint, nint, int> AllGather { get; private init; }
    public delegate* unmanaged<void*, void*, nuint, int, int, nint, nint, int> Broadcast { get; private init; }
    public delegate* unmanaged<int> GroupStart { get; private init; }
    public delegate* unmanaged<int> GroupEnd { get; private init; }
    private delegate* unmanaged<int, byte*> ErrorString { get; init; }

    /// <summary>Loads the first of <paramref name="candidates"/> that loads and binds it.</summary>
    /// <exception cref="InvalidOperationException">None loads (the message names each and why), or one lacks an NCCL function.</exception>
    public static NcclNative Load(IReadOnlyList<string> candidates)
    {
        var failures = new List<string>();
        foreach (string candidate in candidates)
        {
            bool isPath = candidate.Contains('/');
            if (isPath && !File.Exists(candidate))
            {
                failures.Add("no such file");
                continue;
            }
            if (NativeLibrary.TryLoad(candidate, out nint handle)) return Bind(candidate, handle);
            failures.Add(isPath ? "exists but does not load" : "not found by the dynamic loader");
        }
        throw new InvalidOperationException(NcclLibraryLocator.NotFound(candidates, failures));
    }

    private static NcclNative Bind(string library, nint handle)
    {
        nint Export(string name) => NativeLibrary.TryGetExport(handle, name, out nint f)
            ? f
            : throw new InvalidOperationException($"{library} has no {name}: it is not NCCL ≥ 2.10");
        var nccl = new NcclNative
        {
            Library = library,
            GetVersion = (delegate* unmanaged<int*, int>)Export("ncclGetVersion"),
            GetUniqueId = (delegate* unmanaged<NcclUniqueId*, int>)Export("ncclGetUniqueId"),
            CommInitRank = (delegate* unmanaged<nint*, int, NcclUniqueId, int, int>)Export("ncclCommInitRank"),
            CommDestroy = (delegate* unmanaged<nint, int>)Export("ncclCommDestroy"),
            CommAbort = (delegate* unmanaged<nint, int>)Export("ncclCommAbort"),
            CommGetAsyncError = (delegate* unmanaged<nint, int*, int>)Export("ncclCommGetAsyncError"),
            AllReduce = (delegate* unmanaged<void*, void*, nuint, int, int, nint, nint, int>)Export("ncclAllReduce"),
            AllGather = (delegate* unmanaged<void*, void*, nuint, int, nint, nint, int>)Export("ncclAllGather"),
            Broadcast = (delegate* unmanaged<void*, void*, nuint, int, int, nint, nint, int>)Export("ncclBroadcast"),
            GroupStart = (delegate* unmanaged<int>)Export("ncclGroupStart"),
            GroupEnd = (delegate* unmanaged<int>)Export("ncclGroupEnd"),
            ErrorString = (delegate* unmanaged<int, byte*>)Export("ncclGetErrorString"),
        };
        int version = 0;
        nccl.Check(nccl.GetVersion(&version), "ncclGetVersion");
        nccl.VersionCode = version;
        if (version < 21000)
            throw new InvalidOperationException($"{library} is NCCL {version}; NCCL ≥ 2.10 is needed (ncclAvg, ncclBfloat16)");
        return nccl;
    }

    /// <summary>NCCL's text for <paramref name="result"/> (<c>ncclGetErrorString</c>).</summary>
    public string ErrorText(int result) => Marshal.PtrToStringUTF8((nint)ErrorString(result)) ?? "unknown error";

    /// <summary>Throws <see cref="NcclException"/> naming <paramref name="call"/> unless <paramref name="result"/> is ncclSuccess.</summary>
    public void Check(int result, string call)
    {
        if (result == 0) return;
        string text = ErrorText(result);
        throw new NcclException($"{call} failed: {text} (ncclResult_t {result}; NCCL_DEBUG=WARN says more)", result);
    }
}
