using System.Runtime.InteropServices;
using System.Text;

namespace MoCoV3.Distributed;

/// <summary>
/// The part of the MPI C API the collectives use, bound at run time from whichever MPI library is loaded, with that
/// library's handles. Handles are passed as <see cref="nint"/>: Open MPI's are pointers, MPICH's are C <c>int</c>s, and on the
/// 64-bit Linux ABIs (x86-64, AArch64) an <c>int</c> argument occupies a full register or stack slot whose low 32 bits the
/// callee reads, so the integer value widened to <see cref="nint"/> is exact.
/// </summary>
internal sealed unsafe class MpiNative
{
    public const int Success = 0;
    public const int ThreadSerialized = 2;   // MPI_THREAD_SERIALIZED in both ABIs

    private const int MaxLibraryVersion = 8192;   // MPICH's MPI_MAX_LIBRARY_VERSION_STRING (Open MPI's is 256)
    private const int MaxErrorString = 1024;       // ≥ both ABIs' MPI_MAX_ERROR_STRING

    public required string Library { get; init; }
    public required MpiFlavour Flavour { get; init; }
    public required string Version { get; init; }

    public nint CommWorld { get; private init; }
    public nint Byte { get; private init; }
    public nint Int32 { get; private init; }
    public nint Int64 { get; private init; }
    public nint Float { get; private init; }
    public nint Double { get; private init; }
    public nint OpSum { get; private init; }
    public nint ErrorsReturn { get; private init; }
    public nint InPlace { get; private init; }
    /// <summary><c>MPI_ANY_SOURCE</c>: −1 in Open MPI, −2 in MPICH.</summary>
    public int AnySource { get; private init; }
    /// <summary><c>MPI_STATUS_IGNORE</c>: NULL in Open MPI, (MPI_Status*)1 in MPICH.</summary>
    public nint StatusIgnore { get; private init; }

    public delegate* unmanaged<int*, int> Initialized { get; private init; }
    public delegate* unmanaged<int*, int> Finalized { get; private init; }
    public delegate* unmanaged<int*, byte***, int, int*, int> InitThread { get; private init; }
    public delegate* unmanaged<int> Finalize { get; private init; }
    public delegate* unmanaged<nint, int*, int> CommRank { get; private init; }
    public delegate* unmanaged<nint, int*, int> CommSize { get; private init; }
    public delegate* unmanaged<nint, nint, int> CommSetErrhandler { get; private init; }
    public delegate* unmanaged<void*, void*, int, nint, nint, nint, int> Allreduce { get; private init; }
    public delegate* unmanaged<void*, int, nint, void*, int, nint, nint, int> Allgather { get; private init; }
    public delegate* unmanaged<void*, int, nint, int, nint, int> Bcast { get; private init; }
    public delegate* unmanaged<nint, int> Barrier { get; private init; }
    public delegate* unmanaged<nint, int, int> Abort { get; private init; }
    // Nonblocking collectives and point-to-point messages: MPI_Request is a pointer in Open MPI and an int in MPICH; both are
    // passed by address in an nint that starts at zero (MPICH writes its low 32 bits, little-endian).
    public delegate* unmanaged<void*, void*, int, nint, nint, nint, nint*, int> Iallreduce { get; private init; }
    public delegate* unmanaged<void*, int, nint, void*, int, nint, nint, nint*, int> Iallgather { get; private init; }
    public delegate* unmanaged<void*, int, nint, int, nint, nint*, int> Ibcast { get; private init; }
    public delegate* unmanaged<nint, nint*, int> Ibarrier { get; private init; }
    public delegate* unmanaged<nint*, int*, nint, int> Test { get; private init; }
    public delegate* unmanaged<void*, int, nint, int, int, nint, nint*, int> Isend { get; private init; }
    public delegate* unmanaged<void*, int, nint, int, int, nint, nint*, int> Irecv { get; private init; }
    public delegate* unmanaged<int, int, nint, int*, nint, int> Iprobe { get; private init; }
    public delegate* unmanaged<void*, int, nint, int, int, nint, nint, int> Recv { get; private init; }
    public delegate* unmanaged<nint*, int> RequestFree { get; private init; }
    private delegate* unmanaged<int, byte*, int*, int> ErrorString { get; init; }

    /// <summary>Loads the first of <paramref name="candidates"/> that the dynamic loader finds and binds it.</summary>
    /// <exception cref="InvalidOperationException">None loads, or the library is not an MPI of a known ABI.</exception>
    public static MpiNative Load(IReadOnlyList<string> candidates)
    {
        var failures = new List<string>();
        foreach (string candidate in candidates)
        {
            if (TryOpen(candidate, out nint handle, out string? failure)) return Bind(candidate, handle);
            failures.Add(failure!);
        }
        throw new InvalidOperationException(
            $"no MPI library could be loaded ({string.Join("; ", failures)}): {MpiLibraryLocator.InstallHint(candidates)}");
    }

    // RTLD_GLOBAL, as mpi4py does: Open MPI's plugins (mca_*.so), which it opens itself, resolve MPI symbols against the
    // process's global scope; NativeLibrary.Load opens with RTLD_LOCAL.
    private static bool TryOpen(string library, out nint handle, out string? failure)
    {
        const int RtldNow = 0x2, RtldGlobal = 0x100;
        handle = Dl.dlopen(library, RtldNow | RtldGlobal);
        if (handle != 0) { failure = null; return true; }
        nint error = Dl.dlerror();
        failure = error != 0 ? Marshal.PtrToStringUTF8(error) ?? library : $"{library}: not found";
        return false;
    }

    private static MpiNative Bind(string library, nint handle)
    {
        nint Export(string name) => NativeLibrary.TryGetExport(handle, name, out nint address)
            ? address
            : throw new InvalidOperationException($"{library} does not export {name}: it is not an MPI-3 library");

        var getVersion = (delegate* unmanaged<byte*, int*, int>)Export("MPI_Get_library_version");   // callable before MPI_Init
        byte* text = stackalloc byte[MaxLibraryVersion];
        int length = 0;
        string version = getVersion(text, &length) == Success
            ? string.Join(' ', Encoding.UTF8.GetString(text, length).Split('\n')[0].Split(',')[0].Split((char[])['\0', ' ', '\t', '\r', '\n'], StringSplitOptions.RemoveEmptyEntries))
            : "unknown version";   // Open MPI's first field ("Open MPI v4.1.4"), MPICH's "MPICH Version: 4.0.2"

        bool openMpi = NativeLibrary.TryGetExport(handle, "ompi_mpi_comm_world", out _);
        if (!openMpi && !(version.Contains("MPICH", StringComparison.OrdinalIgnoreCase)
                          || version.Contains("Intel", StringComparison.OrdinalIgnoreCase)
                          || version.Contains("MVAPICH", StringComparison.OrdinalIgnoreCase)))
            throw new InvalidOperationException(
                $"{library} ({version}) is neither Open MPI nor of MPICH's ABI (MPICH, Intel MPI, MVAPICH): its handles are unknown to this binding");

        return new MpiNative
        {
            Library = library,
            Flavour = openMpi ? MpiFlavour.OpenMpi : MpiFlavour.Mpich,
            Version = version,
            // Open MPI: handles are the addresses of predefined objects. MPICH: constants of its mpi.h.
            CommWorld = openMpi ? Export("ompi_mpi_comm_world") : 0x44000000,
            Byte = openMpi ? Export("ompi_mpi_byte") : 0x4c00010d,
            Int32 = openMpi ? Export("ompi_mpi_int") : 0x4c000405,
            Int64 = openMpi ? Export("ompi_mpi_long_long_int") : 0x4c000809,
            Float = openMpi ? Export("ompi_mpi_float") : 0x4c00040a,
            Double = openMpi ? Export("ompi_mpi_double") : 0x4c00080b,
            OpSum = openMpi ? Export("ompi_mpi_op_sum") : 0x58000003,
            ErrorsReturn = openMpi ? Export("ompi_mpi_errors_return") : 0x54000001,
            InPlace = openMpi ? 1 : -1,
            AnySource = openMpi ? -1 : -2,
            StatusIgnore = openMpi ? 0 : 1,
            Initialized = (delegate* unmanaged<int*, int>)Export("MPI_Initialized"),
            Finalized = (delegate* unmanaged<int*, int>)Export("MPI_Finalized"),
            InitThread = (delegate* unmanaged<int*, byte***, int, int*, int>)Export("MPI_Init_thread"),
            Finalize = (delegate* unmanaged<int>)Export("MPI_Finalize"),
            CommRank = (delegate* unmanaged<nint, int*, int>)Export("MPI_Comm_rank"),
            CommSize = (delegate* unmanaged<nint, int*, int>)Export("MPI_Comm_size"),
            CommSetErrhandler = (delegate* unmanaged<nint, nint, int>)Export("MPI_Comm_set_errhandler"),
            Allreduce = (delegate* unmanaged<void*, void*, int, nint, nint, nint, int>)Export("MPI_Allreduce"),
            Allgather = (delegate* unmanaged<void*, int, nint, void*, int, nint, nint, int>)Export("MPI_Allgather"),
            Bcast = (delegate* unmanaged<void*, int, nint, int, nint, int>)Export("MPI_Bcast"),
            Barrier = (delegate* unmanaged<nint, int>)Export("MPI_Barrier"),
            Abort = (delegate* unmanaged<nint, int, int>)Export("MPI_Abort"),
            Iallreduce = (delegate* unmanaged<void*, void*, int, nint, nint, nint, nint*, int>)Export("MPI_Iallreduce"),
            Iallgather = (delegate* unmanaged<void*, int, nint, void*, int, nint, nint, nint*, int>)Export("MPI_Iallgather"),
            Ibcast = (delegate* unmanaged<void*, int, nint, int, nint, nint*, int>)Export("MPI_Ibcast"),
            Ibarrier = (delegate* unmanaged<nint, nint*, int>)Export("MPI_Ibarrier"),
            Test = (delegate* unmanaged<nint*, int*, nint, int>)Export("MPI_Test"),
            Isend = (delegate* unmanaged<void*, int, nint, int, int, nint, nint*, int>)Export("MPI_Isend"),
            Irecv = (delegate* unmanaged<void*, int, nint, int, int, nint, nint*, int>)Export("MPI_Irecv"),
            Iprobe = (delegate* unmanaged<int, int, nint, int*, nint, int>)Export("MPI_Iprobe"),
            Recv = (delegate* unmanaged<void*, int, nint, int, int, nint, nint, int>)Export("MPI_Recv"),
            RequestFree = (delegate* unmanaged<nint*, int>)Export("MPI_Request_free"),
            ErrorString = (delegate* unmanaged<int, byte*, int*, int>)Export("MPI_Error_string"),
        };
    }

    /// <summary>Throws an <see cref="MpiException"/> naming <paramref name="call"/> and MPI's own text when <paramref name="code"/> is not success.</summary>
    public void Check(int code, string call)
    {
        if (code == Success) return;
        byte* text = stackalloc byte[MaxErrorString];
        int length = 0;
        string message = ErrorString(code, text, &length) == Success && length > 0
            ? Encoding.UTF8.GetString(text, length).TrimEnd('\0')
            : "no description";
        throw new MpiException(call, code, message);
    }

    /// <summary>
    /// Sets <c>UCX_ERROR_SIGNALS</c> empty in the native environment unless the user set it: UCX (under Debian's MPICH, and
    /// Open MPI on InfiniBand) otherwise installs a SIGSEGV handler that turns the signal behind a .NET
    /// <see cref="NullReferenceException"/>, even a caught one, into an abort. Must run before the MPI library is loaded
    /// (UCX reads its settings when its own library loads).
    /// </summary>
    public static void LeaveSignalsToDotNet()
    {
        _ = Dl.setenv("UCX_ERROR_SIGNALS", "", 0);   // overwrite 0: a value the user set stays
    }

    /// <summary>Ends the process at once with <paramref name="code"/>: no .NET shutdown, no <c>MPI_Finalize</c>.</summary>
    public static void Exit(int code) => Dl._exit(code);

    private static class Dl
    {
        [DllImport("libc", EntryPoint = "_exit")]
        public static extern void _exit(int code);

        [DllImport("libc", EntryPoint = "setenv", CharSet = CharSet.Ansi, BestFitMapping = false)]
        public static extern int setenv(string name, string value, int overwrite);

        [DllImport("libdl.so.2", EntryPoint = "dlopen", CharSet = CharSet.Ansi, BestFitMapping = false)]
        public static extern nint dlopen(string file, int mode);

        [DllImport("libdl.so.2", EntryPoint = "dlerror")]
        public static extern nint dlerror();
    }
}
