using System.Collections;
using MoCoV3.Checkpoints;
using static TorchSharp.torch;

namespace MoCoV3.Tests.Import;

/// <summary>
/// The tensors of a <c>torch.save</c> file are read by the toolkit (<see cref="PyTorchFile.Read"/>), not by PyBridge's
/// own tensor read, whose temporary tensor a garbage collection could free under libtorch: values, dtypes and shapes
/// come back exactly, also while collections and finalizers run all the time, and from nested dicts.
/// </summary>
[TestClass]
public sealed class PyTorchTensorReadTests
{
    [TestMethod]
    public void TensorsComeBackExactlyWithTheirDtypeAndShape()
    {
        string path = Path.Combine(TestData.NewFolder(), "mixed.pth");
        manual_seed(11);
        using var f32 = randn(3, 5);
        using var f64 = randn(4, dtype: float64);
        using var i64 = arange(0, 12, dtype: int64).reshape(2, 2, 3);
        using var u8 = randint(0, 255, [7], dtype: uint8);
        using var b = tensor(new[] { true, false, true });
        using var bf16 = randn(2, 2).to(bfloat16);
        using var scalar = tensor(2.5f);
        var inner = new Hashtable { ["weight"] = f32, ["running_mean"] = f64 };
        PyTorchFile.Write(path, new Hashtable
        {
            ["state_dict"] = inner, ["index"] = i64, ["bytes"] = u8, ["mask"] = b, ["half"] = bf16, ["scale"] = scalar, ["epoch"] = 7,
            ["alias"] = f32,
        });

        var root = PyTorchFile.Read(path);
        var state = (Hashtable)root["state_dict"]!;
        AssertSame(f32, state["weight"]);
        AssertSame(f64, state["running_mean"]);
        AssertSame(i64, root["index"]);
        AssertSame(u8, root["bytes"]);
        AssertSame(b, root["mask"]);
        AssertSame(bf16, root["half"]);
        AssertSame(scalar, root["scale"]);
        Assert.AreEqual(7, Convert.ToInt32(root["epoch"]));
        // The same tensor saved twice is pickled once and referenced again (a memo): it reads as one tensor.
        Assert.AreSame(state["weight"], root["alias"]);
        DisposeTensors(root);
    }

    /// <summary>
    /// 10,000 tensor reads while another thread collects and finalizes without pause: every value checked comes back.
    /// With PyBridge's own tensor read (a view of a temporary nothing referenced, which a collection on another thread
    /// could finalize during the native call) a 4× longer version of this test crashed the process (a segfault in
    /// <c>as_strided_tensorimpl</c>) in one run of three; it is a stress check, not a deterministic reproduction.
    /// </summary>
    [TestMethod]
    public void ReadingIsSafeWhileCollectionsAndFinalizersRun()
    {
        string path = Path.Combine(TestData.NewFolder(), "many.pth");
        const int count = 2000;
        var saved = new Hashtable();
        for (int i = 0; i < count; i++) saved[$"t{i}"] = full(new long[] { 2, 3 }, (float)i);
        PyTorchFile.Write(path, saved);
        DisposeTensors(saved);

        using var stop = new CancellationTokenSource();
        var collector = new Thread(() =>
        {
            while (!stop.IsCancellationRequested)
            {
                // Tensors left to the finalizer, so that each collection has native frees to run.
                for (int i = 0; i < 4; i++) _ = zeros(4);
                GC.Collect(0);
                GC.WaitForPendingFinalizers();
            }
        }) { IsBackground = true, Name = "collector" };
        collector.Start();
        try
        {
            for (int round = 0; round < 5; round++)
            {
                var root = PyTorchFile.Read(path);
                Assert.AreEqual(count, root.Count);
                for (int i = 0; i < count; i += 199)
                {
                    var t = (Tensor)root[$"t{i}"]!;
                    CollectionAssert.AreEqual(new long[] { 2, 3 }, t.shape);
                    Assert.AreEqual((float)i, t.max().item<float>());
                    Assert.AreEqual((float)i, t.min().item<float>());
                }
                DisposeTensors(root);
            }
        }
        finally
        {
            stop.Cancel();
            collector.Join();
        }
    }

    private static void AssertSame(Tensor expected, object? actual)
    {
        var got = actual as Tensor ?? throw new AssertFailedException($"expected a tensor, found {actual?.GetType().Name ?? "null"}");
        Assert.AreEqual(expected.dtype, got.dtype);
        CollectionAssert.AreEqual(expected.shape, got.shape);
        Assert.IsTrue(expected.eq(got).all().item<bool>(), $"values differ: {got}");
    }

    private static void DisposeTensors(Hashtable root)
    {
        foreach (object? value in root.Values)
        {
            if (value is Tensor t) t.Dispose();
            else if (value is Hashtable inner) DisposeTensors(inner);
        }
    }
}
