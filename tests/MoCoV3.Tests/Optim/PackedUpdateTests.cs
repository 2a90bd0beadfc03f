using MoCoV3.Runtime;
using MoCoV3.Checkpoints;
using MoCoV3.Distributed;
using MoCoV3.Method;
using MoCoV3.Models;
using MoCoV3.Optim;
using MoCoV3.Tests.Import;
using MoCoV3.Training;
using static TorchSharp.torch;

namespace MoCoV3.Tests.Optim;

/// <summary>
/// Parameters packed into flat buffers (<see cref="ParameterBuffer"/>, <see cref="MoCo.FlattenParameters"/>): the
/// momentum update, AdamW and LARS over the flat tensors train like the per-parameter loops, and checkpoints are the same.
/// </summary>
[TestClass]
public sealed class PackedUpdateTests
{
    // 36 wide: vectors of 36 and 108 elements leave alignment padding between the packed parameters.
    private static readonly ModelPreset Vit = TestPresets.MicroVit.WithVit(vit => vit with { EmbedDim = 36 });

    private static (MoCo Model, ITrainingOptimizer Optimizer) Build(ModelPreset preset, bool packed, long seed = 21)
    {
        manual_seed(seed);
        var model = new MoCo(preset, BackboneFactory.Create);
        model.train();
        return (model, TrainStep.CreateOptimizer(preset, model, 1e-2, packed));
    }

    private static void Train(MoCo model, ITrainingOptimizer optimizer, ModelPreset preset, int steps, long seed = 5, GradientClipping? clip = null)
    {
        var generator = new TorchSharp.torch.Generator((ulong)seed);
        for (int i = 0; i < steps; i++)
        {
            using var scope = NewDisposeScope();
            var x1 = randn([6, preset.Input.Channels, preset.Input.ImageSize, preset.Input.ImageSize], generator: generator);
            var x2 = randn([6, preset.Input.Channels, preset.Input.ImageSize, preset.Input.ImageSize], generator: generator);
            TrainStep.Run(model, optimizer, x1, x2, lr: 1e-2 * (i + 1), m: 0.9, clip: clip);
        }
    }

    /// <summary>Largest |a − b| over every tensor of both state dicts (same keys, same shapes asserted).</summary>
    private static double MaxDifference(MoCo a, MoCo b)
    {
        var sa = a.state_dict();
        var sb = b.state_dict();
        CollectionAssert.AreEqual(sa.Keys.ToList(), sb.Keys.ToList());
        double max = 0;
        foreach (var (name, ta) in sa)
        {
            CollectionAssert.AreEqual(ta.shape, sb[name].shape, name);
            if (!ta.is_floating_point()) continue;
            max = Math.Max(max, (ta - sb[name]).abs().max().item<float>());
        }
        return max;
    }

    private static double MaxChange(MoCo trained, MoCo initial) => MaxDifference(trained, initial);

    [TestMethod]
    public void Pack_MakesParametersViewsOfOneBufferAndKeepsNamesShapesAndValues()
    {
        manual_seed(3);
        using var model = new MoCo(Vit, BackboneFactory.Create);
        var before = model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.clone());
        var frozenBefore = model.named_parameters().ToDictionary(kv => kv.name, kv => kv.parameter.requires_grad);
        var buffer = model.FlattenParameters();
        Assert.AreSame(buffer, model.FlattenParameters(), "a second call returns the same buffer");

        var after = model.state_dict();
        CollectionAssert.AreEqual(before.Keys.ToList(), after.Keys.ToList());
        foreach (var (name, t) in before)
        {
            CollectionAssert.AreEqual(t.shape, after[name].shape, name);
            Assert.IsTrue(t.eq(after[name]).all().item<bool>(), $"{name} kept its values");
        }
        foreach (var (name, p) in model.named_parameters()) Assert.AreEqual(frozenBefore[name], p.requires_grad, name);

        // The trainable buffer holds exactly TrainableParameters(), in that order, and writing the buffer writes them.
        var trainable = model.TrainableParameters().ToList();
        Assert.HasCount(trainable.Count, buffer.Parameters);
        for (int i = 0; i < trainable.Count; i++) Assert.AreSame(trainable[i], buffer.Parameters[i]);
        long elements = trainable.Sum(p => p.numel());
        Assert.IsTrue(buffer.Count >= elements && buffer.Count < elements + trainable.Count * ParameterBuffer.Alignment, $"{buffer.Count} for {elements} elements");
        for (int i = 0; i <= trainable.Count; i++) Assert.AreEqual(0, buffer.Offset(i) % ParameterBuffer.Alignment, $"offset {i} is aligned");
        using (no_grad()) buffer.Values.fill_(0.25f);
        Assert.IsTrue(trainable.All(p => p.eq(0.25f).all().item<bool>()));
        var qkv = model.BaseEncoder.named_parameters().First(kv => kv.name == "backbone.blocks.0.attn.qkv.weight").parameter;
        Assert.AreEqual(0.25f, qkv[0, 0].item<float>());
        // The frozen patch projection is outside the trainable slice: untouched.
        var patch = model.named_parameters().First(kv => kv.name == "base_encoder.backbone.patch_embed.proj.weight").parameter;
        Assert.IsTrue(patch.eq(before["base_encoder.backbone.patch_embed.proj.weight"]).all().item<bool>());
    }

    [TestMethod]
    public void PackedMomentumUpdate_EqualsThePerParameterOneOnEveryParameter()
    {
        manual_seed(4);
        using var loop = new MoCo(Vit, BackboneFactory.Create);
        manual_seed(4);
        using var packed = new MoCo(Vit, BackboneFactory.Create);
        packed.FlattenParameters();
        // Make f_q and f_k differ everywhere (frozen parameters included), the same way in both models.
        foreach (var model in new[] { loop, packed })
        {
            manual_seed(11);
            using var _ = no_grad();
            foreach (var p in model.BaseEncoder.parameters()) p.add_(randn_like(p));
        }
        for (int i = 0; i < 3; i++)
        {
            loop.UpdateMomentumEncoder(0.9);
            packed.UpdateMomentumEncoder(0.9);
        }
        var k0 = loop.MomentumEncoder.named_parameters().ToDictionary(kv => kv.name, kv => kv.parameter);
        foreach (var (name, k) in packed.MomentumEncoder.named_parameters())
            Assert.IsTrue((k - k0[name]).abs().max().item<float>() < 1e-6f, name);
        var pos = k0["backbone.pos_embed"];
        var q = loop.BaseEncoder.named_parameters().First(kv => kv.name == "backbone.pos_embed").parameter;
        Assert.IsTrue((pos - q).abs().max().item<float>() > 0.1f, "the updates moved f_k part of the way only");
    }

    [TestMethod]
    [DataRow(OptimizerKind.AdamW)]
    [DataRow(OptimizerKind.Lars)]
    public void PackedTraining_MatchesPerParameterTrainingOverSeveralSteps(OptimizerKind kind)
    {
        var preset = Vit.WithRecipe(recipe => recipe with { Optimizer = kind, WeightDecay = 0.05 });
        var (loopModel, loopOptimizer) = Build(preset, packed: false);
        var (packedModel, packedOptimizer) = Build(preset, packed: true);
        var (initial, initialOptimizer) = Build(preset, packed: false);
        using (loopModel) using (loopOptimizer) using (packedModel) using (packedOptimizer) using (initial) using (initialOptimizer)
        {
            Assert.IsTrue(packedOptimizer is AdamWOptimizer { IsFlat: true } or Lars { IsFlat: true });
            Assert.IsFalse(loopOptimizer is AdamWOptimizer { IsFlat: true } or Lars { IsFlat: true });
            Train(loopModel, loopOptimizer, preset, 4);
            Train(packedModel, packedOptimizer, preset, 4);
            double change = MaxChange(loopModel, initial);
            Assert.IsTrue(change > 1e-3, $"training moved the weights ({change})");
            double difference = MaxDifference(loopModel, packedModel);
            Assert.IsTrue(difference < 1e-5, $"{kind}: packed and per-parameter weights differ by {difference}");
            // The alignment padding between the parameters stayed zero: the buffer holds the parameters and nothing else.
            var buffer = packedModel.FlatTrainableParameters!;
            double inParameters = buffer.Parameters.Sum(p => p.abs().sum().item<float>());
            Assert.AreEqual(inParameters, buffer.Values.abs().sum().item<float>(), 1e-4 * inParameters);
            Assert.IsTrue(buffer.Count > buffer.Parameters.Sum(p => p.numel()), "the micro ViT has padding to check");
        }
    }

    [TestMethod]
    public void PackedAdamWWithClipping_MatchesPerParameter()
    {
        var (loopModel, loopOptimizer) = Build(Vit, packed: false);
        var (packedModel, packedOptimizer) = Build(Vit, packed: true);
        using (loopModel) using (loopOptimizer) using (packedModel) using (packedOptimizer)
        {
            // One step: the flat norm rounds differently from the per-parameter sum (relative 1e-7), and over several steps
            // AdamW blows such differences up where a gradient is rounding noise (a bias feeding a BatchNorm).
            var loopClip = new GradientClipping(0.05);
            var packedClip = new GradientClipping(0.05);
            Train(loopModel, loopOptimizer, Vit, 1, clip: loopClip);
            Train(packedModel, packedOptimizer, Vit, 1, clip: packedClip);
            Assert.IsLessThan(1.0, packedClip.LastScale, "the gradients were clipped");
            // float32 sums in another order (one flat norm vs per-parameter sums of squares)
            Assert.AreEqual(loopClip.LastNorm, packedClip.LastNorm, 1e-4 * loopClip.LastNorm, $"{loopClip.LastNorm} vs {packedClip.LastNorm}");
            double difference = MaxDifference(loopModel, packedModel);
            Assert.IsTrue(difference < 1e-6, $"packed and per-parameter weights differ by {difference}");
        }
    }

    [TestMethod]
    public void ReplacedGradient_IsCopiedIntoTheBufferBeforeTheStep()
    {
        // A gradient set from outside (not a view of the buffer) is what the packed step uses, as the loop would.
        var (loopModel, loopOptimizer) = Build(Vit, packed: false);
        var (packedModel, packedOptimizer) = Build(Vit, packed: true);
        using (loopModel) using (loopOptimizer) using (packedModel) using (packedOptimizer)
        {
            foreach (var (model, optimizer) in new[] { (loopModel, loopOptimizer), (packedModel, packedOptimizer) })
            {
                manual_seed(12);
                foreach (var p in optimizer.Parameters) p.grad = randn_like(p).DetachFromDisposeScope();
                optimizer.Step();
            }
            Assert.IsTrue(MaxDifference(loopModel, packedModel) < 1e-6);
            var buffer = packedModel.FlatTrainableParameters!;
            packedOptimizer.ZeroGrad();
            for (int i = 0; i < buffer.Parameters.Count; i++)
            {
                using var grad = buffer.Parameters[i].grad!;
                Assert.IsTrue(TensorMemory.SameMemory(grad, buffer.ViewOf(buffer.Gradients!, i)), $"gradient {i} points at the buffer again");
            }
            Assert.AreEqual(0f, buffer.Gradients!.abs().max().item<float>());
        }
    }

    [TestMethod]
    [DataRow(OptimizerKind.AdamW)]
    [DataRow(OptimizerKind.Lars)]
    public void Checkpoint_RoundTripsBetweenPackedAndPerParameterAndResumesExactly(OptimizerKind kind)
    {
        var preset = Vit.WithRecipe(recipe => recipe with { Optimizer = kind });
        var plan = new RunPlan { Batch = 6, StepsPerEpoch = 1, TotalSteps = 4, PeakLr = 1e-2, WarmupEpochs = 0, Seed = 4 };
        string packedPath = ImportTestFiles.TempFile($"packed-{kind}.ckpt");
        string loopPath = ImportTestFiles.TempFile($"loop-{kind}.ckpt");
        var (packedModel, packedOptimizer) = Build(preset, packed: true);
        var (loopModel, loopOptimizer) = Build(preset, packed: false);
        using (packedModel) using (packedOptimizer) using (loopModel) using (loopOptimizer)
        {
            Train(packedModel, packedOptimizer, preset, 2);
            Train(loopModel, loopOptimizer, preset, 2);
            var header = new CheckpointHeader { Preset = preset, Plan = plan, Step = 2, ElapsedSeconds = 1, Saved = DateTimeOffset.UnixEpoch };
            CheckpointFile.Save(packedPath, header, packedModel, packedOptimizer);
            CheckpointFile.Save(loopPath, header, loopModel, loopOptimizer);
            // Same format: the files have the same length, and a packed checkpoint loads into per-parameter training and back.
            Assert.AreEqual(new FileInfo(loopPath).Length, new FileInfo(packedPath).Length);

            var (resumedPacked, resumedPackedOptimizer) = Build(preset, packed: true, seed: 99);
            var (crossPacked, crossPackedOptimizer) = Build(preset, packed: true, seed: 98);
            var (crossLoop, crossLoopOptimizer) = Build(preset, packed: false, seed: 97);
            using (resumedPacked) using (resumedPackedOptimizer) using (crossPacked) using (crossPackedOptimizer) using (crossLoop) using (crossLoopOptimizer)
            {
                CheckpointFile.Load(packedPath, resumedPacked, resumedPackedOptimizer);
                CheckpointFile.Load(loopPath, crossPacked, crossPackedOptimizer);
                CheckpointFile.Load(packedPath, crossLoop, crossLoopOptimizer);
                Assert.AreEqual(0, MaxDifference(resumedPacked, packedModel), "packed checkpoint into a packed model");
                Assert.AreEqual(0, MaxDifference(crossPacked, loopModel), "per-parameter checkpoint into a packed model");
                Assert.AreEqual(0, MaxDifference(crossLoop, packedModel), "packed checkpoint into a per-parameter model");
                // Resuming: the next steps (optimiser state from the file) are those of the uninterrupted run.
                Train(packedModel, packedOptimizer, preset, 2, seed: 6);
                Train(resumedPacked, resumedPackedOptimizer, preset, 2, seed: 6);
                Train(loopModel, loopOptimizer, preset, 2, seed: 6);
                Train(crossPacked, crossPackedOptimizer, preset, 2, seed: 6);
                Train(crossLoop, crossLoopOptimizer, preset, 2, seed: 6);
                Assert.AreEqual(0, MaxDifference(packedModel, resumedPacked), "packed run resumed from its own file");
                Assert.IsTrue(MaxDifference(loopModel, crossPacked) < 1e-5, "per-parameter file resumed packed");
                Assert.IsTrue(MaxDifference(packedModel, crossLoop) < 1e-5, "packed file resumed per parameter");
            }
        }
    }

    [TestMethod]
    public void GradientAverager_ReducesThePackedGradientsInPlace()
    {
        using var world = new SingleProcessCommunicator();
        var (model, optimizer) = Build(Vit, packed: true);
        using (model) using (optimizer)
        {
            using var averager = new GradientAverager(optimizer.Parameters, world);
            var gradients = model.FlatTrainableParameters!.Gradients!;
            Assert.IsTrue(TensorMemory.SameMemory(averager.Buffer, gradients), "the averager shares the optimiser's gradient buffer");
            Train(model, optimizer, Vit, 1);
            optimizer.ZeroGrad();
            using var scope = NewDisposeScope();
            using var x = randn(6, Vit.Input.Channels, Vit.Input.ImageSize, Vit.Input.ImageSize);
            model.forward(x, x.flip(3), 0.9).backward();
            averager.Average();
            for (int i = 0; i < optimizer.Parameters.Count; i++) Assert.IsTrue(averager.GradientIsInBuffer(i), $"parameter {i}");
            Assert.IsTrue(gradients.abs().max().item<float>() > 1e-4, "backward wrote into the shared buffer");
            Assert.AreEqual(0f, (gradients - averager.Buffer).abs().max().item<float>());
        }
    }

    [TestMethod]
    public void FlatGradientsOf_IsNullForGradientsThatAreNotOneBuffer()
    {
        using var scope = NewDisposeScope();
        var a = new TorchSharp.Modules.Parameter(zeros(3));
        var b = new TorchSharp.Modules.Parameter(zeros(2, 2));
        Assert.IsNull(ParameterBuffer.FlatGradientsOf([a, b]), "no gradients");
        a.grad = ones(3);
        b.grad = ones(2, 2);
        Assert.IsNull(ParameterBuffer.FlatGradientsOf([a, b]), "two separate tensors");
        using var buffer = ParameterBuffer.Pack([a, b]);
        var flat = buffer.AttachGradients();
        Assert.AreEqual(7f, flat.sum().item<float>(), "existing gradients were kept");
        var found = ParameterBuffer.FlatGradientsOf([a, b]);
        Assert.IsNotNull(found);
        // From a's start to b's end, over the alignment padding after a: a 3 elements at 0, b 4 at 16.
        Assert.AreEqual(ParameterBuffer.Alignment, buffer.Offset(1));
        Assert.AreEqual(ParameterBuffer.Alignment + 4, found.numel());
        Assert.AreEqual(TensorMemory.StorageAddress(flat), TensorMemory.StorageAddress(found));
        Assert.AreEqual(flat.storage_offset(), found.storage_offset());
        Assert.IsNull(ParameterBuffer.FlatGradientsOf([b, a]), "the other order is not one buffer");
    }
}
