using MoCoV3.Distributed;
using TorchSharp;
using static TorchSharp.torch;

namespace MoCoV3.Tests.Distributed;

/// <summary>
/// The NCCL engine's parts that run without a GPU: where the library is looked for and the error naming those places,
/// the torchrun environment → NCCL_COMM_ID mapping, the unique-id exchange, which engine a launch gets, and the refusals.
/// The GPU test at the end is inconclusive without CUDA (bench/gpu-dp.sh runs the multi-rank checks on a GPU machine).
/// </summary>
[TestClass]
public sealed class NcclTests
{
    private static Func<string, string?> Env(params (string Name, string Value)[] set) =>
        name => set.FirstOrDefault(v => v.Name == name).Value;

    [TestMethod]
    public void NcclIsLookedForNextToPyTorchsLibTorchThenByTheLoader()
    {
        var candidates = NcclLibraryLocator.Candidates(null, "/opt/py/site-packages/torch/lib", Env());
        CollectionAssert.AreEqual(new[]
        {
            "/opt/py/site-packages/nvidia/nccl/lib/libnccl.so.2", "/opt/py/site-packages/torch/lib/libnccl.so.2", "libnccl.so.2",
        }, candidates.ToArray());
    }

    [TestMethod]
    public void LibTorchFolderComesFromItsEnvironmentVariableWhenNotGiven()
    {
        var candidates = NcclLibraryLocator.Candidates(null, null, Env(("MOCOV3_LIBTORCH", "/venv/lib/python3.12/site-packages/torch/lib/")));
        Assert.AreEqual("/venv/lib/python3.12/site-packages/nvidia/nccl/lib/libnccl.so.2", candidates[0]);
        Assert.AreEqual(3, candidates.Count);
        CollectionAssert.AreEqual(new[] { "libnccl.so.2" }, NcclLibraryLocator.Candidates(null, null, Env()).ToArray());
    }

    [TestMethod]
    public void AnExplicitLibraryOrFolderIsTheOnlyCandidate()
    {
        var env = Env((NcclLibraryLocator.EnvironmentVariable, "/nccl/lib"), ("MOCOV3_LIBTORCH", "/torch/lib"));
        CollectionAssert.AreEqual(new[] { "/nccl/lib/libnccl.so.2" }, NcclLibraryLocator.Candidates(null, "/torch/lib", env).ToArray());
        CollectionAssert.AreEqual(new[] { "/mine/libnccl.so.2.27.3" }, NcclLibraryLocator.Candidates("/mine/libnccl.so.2.27.3", "/torch/lib", env).ToArray());
    }

    [TestMethod]
    public void MissingNcclNamesEveryPlaceLookedAndHowToNameAnother()
    {
        string[] candidates = ["/nonexistent/nvidia/nccl/lib/libnccl.so.2", "libnccl-absent-for-this-test.so.2"];
        var e = Assert.ThrowsExactly<InvalidOperationException>(() => NcclNative.Load(candidates));
        StringAssert.StartsWith(e.Message, "NCCL could not be loaded; looked for /nonexistent/nvidia/nccl/lib/libnccl.so.2 (no such file); " +
                                           "libnccl-absent-for-this-test.so.2 (not found by the dynamic loader).");
        StringAssert.Contains(e.Message, "MOCOV3_NCCL");
        StringAssert.Contains(e.Message, "site-packages/nvidia/nccl/lib");
    }

    [TestMethod]
    public void TorchrunBootstrapIsMasterAddressAtTheNextPort()
    {
        Assert.AreEqual("10.0.0.1:29501", NcclBootstrap.CommId(new Dictionary<string, string> { ["MASTER_ADDR"] = "10.0.0.1", ["MASTER_PORT"] = "29500" }));
        Assert.AreEqual("[fe80::1]:1235", NcclBootstrap.CommId(new Dictionary<string, string> { ["MASTER_ADDR"] = "fe80::1", ["MASTER_PORT"] = "1234" }));
        Assert.AreEqual("node7:4000", NcclBootstrap.CommId(new Dictionary<string, string>
        {
            ["NCCL_COMM_ID"] = "node7:4000", ["MASTER_ADDR"] = "10.0.0.1", ["MASTER_PORT"] = "29500",
        }));
    }

    [TestMethod]
    public void TorchrunBootstrapWithoutMasterAddressOrPortIsNamed()
    {
        var e = Assert.ThrowsExactly<InvalidOperationException>(() => NcclBootstrap.CommId(new Dictionary<string, string> { ["MASTER_PORT"] = "29500" }));
        StringAssert.Contains(e.Message, "MASTER_ADDR");
        e = Assert.ThrowsExactly<InvalidOperationException>(() => NcclBootstrap.CommId(new Dictionary<string, string> { ["MASTER_ADDR"] = "h" }));
        StringAssert.Contains(e.Message, "not '(unset)'");
        e = Assert.ThrowsExactly<InvalidOperationException>(() => NcclBootstrap.CommId(new Dictionary<string, string> { ["MASTER_ADDR"] = "h", ["MASTER_PORT"] = "65535" }));
        StringAssert.Contains(e.Message, "not '65535'");
    }

    [TestMethod]
    public void NcclCommIdIsSetWhereCCodeReadsIt()
    {
        const string name = "MOCOV3_NCCL_TEST_COMM_ID";
        Assert.IsNull(NcclBootstrap.NativeEnvironment(name));
        NcclBootstrap.SetNativeEnvironment(name, "10.0.0.1:29501");
        Assert.AreEqual("10.0.0.1:29501", NcclBootstrap.NativeEnvironment(name));
        Assert.AreEqual("10.0.0.1:29501", Environment.GetEnvironmentVariable(name));
    }

    [TestMethod]
    public void PlainCudaUnderALauncherIsTheLocalRanksGpu()
    {
        var torchrun = new LaunchEnvironment(Launcher.Torchrun, 5, 8, 1);
        Assert.AreEqual("cuda:1", NcclBootstrap.RankDevice("cuda", torchrun));
        Assert.AreEqual("cuda:3", NcclBootstrap.RankDevice("cuda", new LaunchEnvironment(Launcher.OpenMpi, 3, 4, 3)));
        Assert.AreEqual("cuda:0", NcclBootstrap.RankDevice("cuda:0", torchrun));   // ranks sharing one GPU
        Assert.AreEqual("cpu", NcclBootstrap.RankDevice("cpu", torchrun));
        Assert.AreEqual("cuda", NcclBootstrap.RankDevice("cuda", LaunchEnvironment.SingleProcess));
        Assert.AreEqual(3, NcclBootstrap.CudaIndex("cuda:3"));
        Assert.AreEqual(0, NcclBootstrap.CudaIndex("cuda"));
    }

    [TestMethod]
    public void UniqueIdIsRankZerosBroadcastOverTheControlCommunicator()
    {
        byte[] rootId = [.. Enumerable.Range(0, 128).Select(i => (byte)(i * 7))];
        var root = new RecordingCommunicator(rank: 0, size: 2, rootBytes: null);
        int made = 0;
        CollectionAssert.AreEqual(rootId, NcclBootstrap.ShareUniqueId(root, () => { made++; return rootId; }));
        Assert.AreEqual(1, made);
        Assert.AreEqual(1, root.Broadcasts);

        var other = new RecordingCommunicator(rank: 1, size: 2, rootBytes: rootId);
        CollectionAssert.AreEqual(rootId, NcclBootstrap.ShareUniqueId(other, () => { made++; return new byte[128]; }));
        Assert.AreEqual(1, made, "only rank 0 makes the id");

        var single = new SingleProcessCommunicator();
        Assert.ThrowsExactly<ArgumentException>(() => NcclBootstrap.ShareUniqueId(single, () => new byte[64]));
    }

    [TestMethod]
    public void EngineFollowsLauncherAndDevice()
    {
        Assert.AreEqual(Engine.SingleProcess, DistributedContext.Choose(LaunchEnvironment.SingleProcess, "cuda"));
        Assert.AreEqual(Engine.Mpi, DistributedContext.Choose(new LaunchEnvironment(Launcher.OpenMpi, 0, 2, 0), "cpu"));
        Assert.AreEqual(Engine.NcclOverMpi, DistributedContext.Choose(new LaunchEnvironment(Launcher.Mpich, 1, 2, 1), "cuda:1"));
        Assert.AreEqual(Engine.Nccl, DistributedContext.Choose(new LaunchEnvironment(Launcher.Torchrun, 1, 2, 1), "cuda:1"));
        var e = Assert.ThrowsExactly<InvalidOperationException>(() => DistributedContext.Choose(new LaunchEnvironment(Launcher.Torchrun, 1, 2, 1), "cpu"));
        StringAssert.Contains(e.Message, "RANK=1, WORLD_SIZE=2, LOCAL_RANK=1");
        StringAssert.Contains(e.Message, "use --device cuda, or launch CPU ranks with mpirun");
    }

    [TestMethod]
    public void HostBuffersGoOverTheControlCommunicatorWithoutStartingNccl()
    {
        using var nccl = new NcclCommunicator(new LaunchEnvironment(Launcher.OpenMpi, 0, 1, 0), 0, new SingleProcessCommunicator(), library: "/nonexistent/libnccl.so.2");
        float[] sum = [1.5f, -2f];
        nccl.AllReduceSum<float>(sum);
        double[] all = new double[1];
        nccl.AllGather<double>([3.25], all);
        nccl.Barrier();
        CollectionAssert.AreEqual(new[] { 1.5f, -2f }, sum);
        Assert.AreEqual(3.25, all[0]);
        StringAssert.StartsWith(nccl.Description, "NCCL (not started)");
        StringAssert.Contains(nccl.Description, "over single process");
    }

    [TestMethod]
    public void OnlyNcclTakesCudaTensors()
    {
        var cudaDevice = new Device(DeviceType.CUDA, 0);
        var single = new SingleProcessCommunicator();
        Assert.IsTrue(single.Takes(CPU));
        Assert.IsFalse(single.Takes(cudaDevice));
        using var nccl = new NcclCommunicator(new LaunchEnvironment(Launcher.OpenMpi, 0, 1, 0), 0, new SingleProcessCommunicator());
        Assert.IsTrue(nccl.Takes(cudaDevice));
        Assert.AreEqual(NcclDataType.Float32, NcclCommunicator.DataType(ScalarType.Float32));
        Assert.AreEqual(NcclDataType.Bfloat16, NcclCommunicator.DataType(ScalarType.BFloat16));
        Assert.AreEqual(NcclDataType.Int64, NcclCommunicator.DataType(ScalarType.Int64));
        Assert.ThrowsExactly<ArgumentException>(() => NcclCommunicator.DataType(ScalarType.Bool));
    }

    [TestMethod]
    public void TorchrunWithoutMasterAddressIsRefusedWhenTheCommunicatorIsMade()
    {
        if (Environment.GetEnvironmentVariable("MASTER_ADDR") is not null || Environment.GetEnvironmentVariable("NCCL_COMM_ID") is not null)
            Assert.Inconclusive("MASTER_ADDR or NCCL_COMM_ID is set in this environment");
        var e = Assert.ThrowsExactly<InvalidOperationException>(() => new NcclCommunicator(new LaunchEnvironment(Launcher.Torchrun, 1, 2, 1), 1, control: null));
        StringAssert.StartsWith(e.Message, "a torchrun-style launch needs MASTER_ADDR (and MASTER_PORT) for NCCL's bootstrap");
        var mismatch = Assert.ThrowsExactly<ArgumentException>(() => new NcclCommunicator(new LaunchEnvironment(Launcher.OpenMpi, 1, 2, 1), 1, new SingleProcessCommunicator()));
        Assert.AreEqual("MPI says rank 0 of 1, the launcher rank 1 of 2", mismatch.Message);
    }

    [TestMethod]
    public void NcclWithoutCudaIsRefusedByName()
    {
        if (cuda.is_available()) Assert.Inconclusive("CUDA is available here: the refusal is for machines without it");
        using var nccl = new NcclCommunicator(new LaunchEnvironment(Launcher.OpenMpi, 0, 1, 0), 0, new SingleProcessCommunicator());
        using var t = ones(3);
        var e = Assert.ThrowsExactly<InvalidOperationException>(() => nccl.AllReduce(t));
        Assert.AreEqual("NCCL collectives need CUDA, which libtorch does not have here (rank 0 of 1)", e.Message);
    }

    [TestMethod]
    public void NcclAtOneRankOnTheGpu()
    {
        if (!cuda.is_available()) Assert.Inconclusive("no CUDA here (run on a GPU machine with MOCOV3_LIBTORCH; bench/gpu-dp.sh runs the multi-rank checks)");
        using var nccl = new NcclCommunicator(new LaunchEnvironment(Launcher.OpenMpi, 0, 1, 0), 0, new SingleProcessCommunicator());
        using var t = tensor(new float[] { 1, 2, 3 }, device: CUDA);
        nccl.AllReduce(t);
        nccl.AllReduce(t, average: true);
        CollectionAssert.AreEqual(new float[] { 1, 2, 3 }, t.cpu().data<float>().ToArray());
        using var all = nccl.AllGather(t.view(1, 3));
        CollectionAssert.AreEqual(new long[] { 1, 3 }, all.shape);
        nccl.Broadcast(t, 0);
        StringAssert.StartsWith(nccl.Description, "NCCL 2.");
    }

    /// <summary>A two-rank view from one rank: a broadcast from rank 0 writes <c>rootBytes</c> on the other rank.</summary>
    private sealed class RecordingCommunicator(int rank, int size, byte[]? rootBytes) : ICommunicator
    {
        public int Broadcasts { get; private set; }
        public int Rank => rank;
        public int Size => size;
        public string Description => "recording";
        public void AllReduceSum<T>(Span<T> buffer) where T : unmanaged => throw new NotSupportedException();
        public void AllGather<T>(ReadOnlySpan<T> local, Span<T> all) where T : unmanaged => throw new NotSupportedException();

        public void Broadcast<T>(Span<T> buffer, int root) where T : unmanaged
        {
            Assert.AreEqual(0, root);
            Broadcasts++;
            if (rootBytes is not null) rootBytes.CopyTo(System.Runtime.InteropServices.MemoryMarshal.AsBytes(buffer));
        }

        public void Barrier() => throw new NotSupportedException();
        public void Dispose()
        {
        }
    }
}
