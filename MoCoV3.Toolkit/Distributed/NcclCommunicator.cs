using MoCoV3.Runtime;
using System.Collections;
using System.Runtime.InteropServices;
using TorchSharp;
using static TorchSharp.torch;

namespace MoCoV3.Distributed;

/// <summary>
/// Collectives on CUDA tensors over NCCL, one GPU per rank (<c>cuda:N</c>). The NCCL communicator is made on the first
/// collective, after libtorch has loaded CUDA: its unique id comes over the control communicator (MPI, under
/// <c>mpirun</c>) or from NCCL's own bootstrap at <see cref="NcclBootstrap.CommId"/> (torchrun-style, no MPI).
/// Collectives on host buffers (losses, counts, timings) go over MPI when there is one, else through small CUDA tensors
/// over NCCL. NCCL work is enqueued on CUDA's legacy default stream (stream 0): TorchSharp never changes libtorch's current
/// stream, which is therefore that stream, so NCCL is ordered after the kernels that wrote the gradients and before those
/// that read them, with no extra synchronisation; the cost is that communication never overlaps computation.
/// A rank that dies or stops leaves the others' NCCL kernels spinning: <see cref="NcclWatchdog"/> (started with the
/// communicator) ends the job when a collective stays unfinished longer than <see cref="Timeout"/> or NCCL reports an error;
/// under mpirun it first asks the other ranks who is still there (MPI's roll call).
/// </summary>
public sealed unsafe class NcclCommunicator : ICommunicator
{
    private readonly ICommunicator? control;
    private readonly string? library;
    private readonly string? libtorchDir;
    private readonly string? commId;
    private NcclNative? nccl;
    private nint comm;
    private NcclWatchdog? watchdog;
    private string activity = "starting";

    /// <param name="launch">This rank's launch (rank and world size).</param>
    /// <param name="device">The CUDA device index of this rank.</param>
    /// <param name="control">MPI under mpirun / mpiexec; null under a torchrun-style launch.</param>
    /// <param name="library">NCCL library or folder (null: see <see cref="NcclLibraryLocator"/>).</param>
    /// <param name="libtorchDir">The CUDA libtorch folder, where NCCL is looked for.</param>
    public NcclCommunicator(LaunchEnvironment launch, int device, ICommunicator? control, string? library = null, string? libtorchDir = null)
    {
        if (control is not null && (control.Rank != launch.Rank || control.Size != launch.WorldSize))
            throw new ArgumentException($"MPI says rank {control.Rank} of {control.Size}, the launcher rank {launch.Rank} of {launch.WorldSize}");
        this.control = control;
        this.library = library;
        this.libtorchDir = libtorchDir;
        Rank = launch.Rank;
        Size = launch.WorldSize;
        Device = device;
        if (control is null) commId = NcclBootstrap.CommId(ProcessVariables());
        Timeout = RankTimeout.Resolve(null);
    }

    /// <summary>
    /// How long one collective may stay unfinished on the GPU before <see cref="NcclWatchdog"/> ends the job (null: forever;
    /// <c>--rank-timeout</c>, see <see cref="RankTimeout"/>). Read when the communicator starts, at the first collective.
    /// </summary>
    public TimeSpan? Timeout { get; set; }

    public int Rank { get; }
    public int Size { get; }
    /// <summary>The CUDA device index this rank's collectives run on.</summary>
    public int Device { get; }
    /// <summary>The MPI communicator under mpirun, for what only MPI does (abort, roll calls); null under torchrun.</summary>
    public ICommunicator? Control => control;

    public string Description =>
        $"{nccl?.Version ?? "NCCL (not started)"} ({nccl?.Library ?? "libnccl"}) on cuda:{Device}, " +
        (control is null ? $"bootstrap at {commId}" : $"unique id and host buffers over {control.Description}");

    /// <summary>Sums (or averages) <paramref name="tensor"/> over the ranks in place (CUDA, contiguous; float32/64, bfloat16, float16, int32/64).</summary>
    public void AllReduce(Tensor tensor, bool average = false)
    {
        var native = Open();
        Check(tensor, "all-reduce");
        nint data = TensorMemory.Address(tensor);
        native.Check(native.AllReduce((void*)data, (void*)data, (nuint)tensor.numel(), (int)DataType(tensor.dtype),
            (int)(average ? NcclReduceOp.Avg : NcclReduceOp.Sum), comm, 0), "ncclAllReduce");
        watchdog?.Enqueued($"ncclAllReduce{(average ? " (average)" : "")} of {tensor.numel():N0} {tensor.dtype}");
        GC.KeepAlive(tensor);
    }

    /// <summary>Every rank's <paramref name="local"/> stacked along dimension 0 in rank order, a new CUDA tensor.</summary>
    public Tensor AllGather(Tensor local)
    {
        var native = Open();
        Check(local, "all-gather");
        long[] shape = local.shape.ToArray();
        shape[0] *= Size;
        var all = empty(shape, local.dtype, local.device);
        try
        {
            // Bytes: any dtype gathers as its raw bytes.
            native.Check(native.AllGather((void*)TensorMemory.Address(local), (void*)TensorMemory.Address(all),
                (nuint)(local.numel() * local.ElementSize), (int)NcclDataType.Uint8, comm, 0), "ncclAllGather");
            watchdog?.Enqueued($"ncclAllGather of {local.numel():N0} {local.dtype} per rank");
        }
        catch
        {
            all.Dispose();
            throw;
        }
        GC.KeepAlive(local);
        return all;
    }

    /// <summary>Replaces <paramref name="tensor"/> on every rank by rank <paramref name="root"/>'s, in place.</summary>
    public void Broadcast(Tensor tensor, int root)
    {
        CollectiveArguments.CheckRoot(root, Size);
        var native = Open();
        Check(tensor, "broadcast");
        nint data = TensorMemory.Address(tensor);
        native.Check(native.Broadcast((void*)data, (void*)data, (nuint)(tensor.numel() * tensor.ElementSize), (int)NcclDataType.Uint8,
            root, comm, 0), "ncclBroadcast");
        watchdog?.Enqueued($"ncclBroadcast from rank {root} of {tensor.numel():N0} {tensor.dtype}");
        GC.KeepAlive(tensor);
    }

    public void AllReduceSum<T>(Span<T> buffer) where T : unmanaged
    {
        CollectiveArguments.CheckElement<T>(reduction: true);
        if (control is not null) control.AllReduceSum(buffer);
        else Staged(buffer, t => AllReduce(t));
    }

    public void AllGather<T>(ReadOnlySpan<T> local, Span<T> all) where T : unmanaged
    {
        CollectiveArguments.CheckElement<T>(reduction: false);
        CollectiveArguments.CheckGather(local.Length, all.Length, Size);
        if (control is not null)
        {
            control.AllGather(local, all);
            return;
        }
        var bytes = MemoryMarshal.AsBytes(local);
        using var host = empty(bytes.Length, ScalarType.Byte);
        bytes.CopyTo(host.bytes);
        using var onDevice = host.to(CudaDevice);
        using var gathered = AllGather(onDevice);
        using var back = gathered.cpu();
        back.bytes.CopyTo(MemoryMarshal.AsBytes(all));
    }

    public void Broadcast<T>(Span<T> buffer, int root) where T : unmanaged
    {
        CollectiveArguments.CheckElement<T>(reduction: false);
        CollectiveArguments.CheckRoot(root, Size);
        if (control is not null) control.Broadcast(buffer, root);
        else Staged(buffer, t => Broadcast(t, root));
    }

    public void Barrier()
    {
        if (control is not null)
        {
            control.Barrier();
            return;
        }
        Span<int> one = [1];
        AllReduceSum(one);   // staged: the copy back waits for the all-reduce, which waits for every rank
    }

    public void SetActivity(string activity)
    {
        this.activity = activity;
        watchdog?.SetActivity(activity);
        control?.SetActivity(activity);
    }

    /// <summary>The watchdog of the started communicator (null before the first collective), for tests and checks.</summary>
    internal NcclWatchdog? Watchdog => watchdog;

    /// <summary>Ends this rank's NCCL communicator at once (pending collectives fail instead of waiting).</summary>
    public void Abort()
    {
        watchdog?.Stop();
        if (nccl is not null && comm != 0)
        {
            nccl.CommAbort(comm);
            comm = 0;
        }
    }

    public void Dispose()
    {
        if (watchdog is not null && !watchdog.Failed)
        {
            watchdog.Dispose();
            watchdog = null;
        }
        if (nccl is not null && comm != 0)
        {
            nccl.CommDestroy(comm);
            comm = 0;
        }
        control?.Dispose();
    }

    private Device CudaDevice => new(DeviceType.CUDA, Device);

    private NcclNative Open()
    {
        if (watchdog is { Failed: true }) Thread.Sleep(System.Threading.Timeout.Infinite);   // the watchdog is ending the job
        if (nccl is not null && comm != 0) return nccl;
        if (!cuda.is_available())
            throw new InvalidOperationException($"NCCL collectives need CUDA, which libtorch does not have here (rank {Rank} of {Size})");
        var native = NcclNative.Load(NcclLibraryLocator.Candidates(library, libtorchDir));
        CudaRuntime.SetDevice(Device);
        if (commId is not null) NcclBootstrap.SetNativeEnvironment("NCCL_COMM_ID", commId);
        byte[] id = control is not null
            ? NcclBootstrap.ShareUniqueId(control, () => MakeId(native))
            : MakeId(native);   // with NCCL_COMM_ID every rank's id names rank 0's bootstrap address
        NcclUniqueId unique;
        id.CopyTo(new Span<byte>(unique.Data, NcclUniqueId.Bytes));
        nint made;
        native.Check(native.CommInitRank(&made, Size, unique, Rank), $"ncclCommInitRank (rank {Rank} of {Size} on cuda:{Device})");
        comm = made;
        nccl = native;
        StartWatchdog(native);
        return native;
    }

    private void StartWatchdog(NcclNative native)
    {
        watchdog = Watch(Rank, Size, Timeout, new NcclWatchedStream(native, comm, Device), control, () => activity);
        watchdog.SetActivity(activity);
        watchdog.Start();
    }

    /// <summary>
    /// A watchdog that ends the job as a run needs: the error on stderr; under mpirun (<paramref name="control"/> is MPI) a
    /// roll call first (over MPI, from the watchdog's thread) and then <c>MPI_Abort</c>, else this process at once with
    /// the exit code, which a torchrun-style launcher sees and ends the other ranks for. No .NET shutdown: the main thread
    /// (waiting on the GPU, or its own MPI rank timeout would have ended the job first) must not go on. Not started.
    /// </summary>
    internal static NcclWatchdog Watch(int rank, int size, TimeSpan? timeout, IWatchedStream stream, ICommunicator? control, Func<string> activity)
    {
        var mpi = control as MpiCommunicator;
        return new NcclWatchdog(rank, size, timeout, stream,
            report: message =>
            {
                Console.Out.Flush();
                Console.Error.WriteLine(message);
                Console.Error.Flush();
            },
            end: code =>
            {
                mpi?.Abort(code);
                MpiNative.Exit(code);
            },
            rollCall: mpi is null ? null : () => mpi.CallTheRoll(TimeSpan.FromSeconds(5), () => $"rank {rank} waits on the GPU in NCCL ({activity()})"));
    }

    private static byte[] MakeId(NcclNative native)
    {
        NcclUniqueId id;
        native.Check(native.GetUniqueId(&id), "ncclGetUniqueId");
        return new Span<byte>(id.Data, NcclUniqueId.Bytes).ToArray();
    }

    private void Staged<T>(Span<T> buffer, Action<Tensor> collective) where T : unmanaged
    {
        var bytes = MemoryMarshal.AsBytes(buffer);
        using var host = empty(buffer.Length, HostType<T>());
        bytes.CopyTo(host.bytes);
        using var onDevice = host.to(CudaDevice);
        collective(onDevice);
        using var back = onDevice.cpu();   // waits for the collective
        back.bytes.CopyTo(bytes);
    }

    private void Check(Tensor tensor, string collective)
    {
        if (tensor.device_type != DeviceType.CUDA || tensor.device_index != Device)
            throw new ArgumentException($"NCCL {collective} on rank {Rank} takes tensors on cuda:{Device}, not {tensor.device}");
        if (!tensor.is_contiguous())
            throw new ArgumentException($"{collective} needs a contiguous tensor (shape [{string.Join(", ", tensor.shape)}] is a strided view): call .contiguous() first");
    }

    internal static NcclDataType DataType(ScalarType type) => type switch
    {
        ScalarType.Float32 => NcclDataType.Float32,
        ScalarType.Float64 => NcclDataType.Float64,
        ScalarType.BFloat16 => NcclDataType.Bfloat16,
        ScalarType.Float16 => NcclDataType.Float16,
        ScalarType.Int32 => NcclDataType.Int32,
        ScalarType.Int64 => NcclDataType.Int64,
        ScalarType.Byte => NcclDataType.Uint8,
        ScalarType.Int8 => NcclDataType.Int8,
        _ => throw new ArgumentException($"NCCL reduces float32, float64, bfloat16, float16, int32, int64, uint8 or int8 tensors, not {type}"),
    };

    private static ScalarType HostType<T>() where T : unmanaged =>
        typeof(T) == typeof(float) ? ScalarType.Float32
        : typeof(T) == typeof(double) ? ScalarType.Float64
        : typeof(T) == typeof(int) ? ScalarType.Int32
        : typeof(T) == typeof(long) ? ScalarType.Int64
        : ScalarType.Byte;

    private static Dictionary<string, string> ProcessVariables()
    {
        var variables = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (DictionaryEntry e in Environment.GetEnvironmentVariables())
            variables[(string)e.Key] = e.Value as string ?? "";
        return variables;
    }
}
