// MpiHost pretrain … : see PretrainScenario; MpiHost lincls|finetune … : see ClassifierScenario; MpiHost watchdog …: see WatchdogScenario.
// MpiHost gradients|syncbn|loss : runs the scenario on every rank (global batch 8, rows [rN, (r+1)N) on rank r) and the
// one-process computation on the whole batch, and prints one JSON line per rank: the largest differences between the two,
// the largest magnitude compared, and a control (the same computation without the cross-rank part) that must differ at
// more than one rank.
using System.Text;
using System.Text.Json;
using MoCoV3.Distributed;
using MoCoV3.Method;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

if (args is ["pretrain", ..]) return PretrainScenario.Run(args[1..]);
if (args is ["lincls" or "finetune", ..]) return ClassifierScenario.Run(args[0], args[1..]);
if (args is ["watchdog", ..]) return WatchdogScenario.Run(args[1..]);
const int Batch = 8;
if (args.Length != 1 || args[0] is not ("gradients" or "syncbn" or "loss"))
{
    Console.Error.WriteLine("usage: MpiHost gradients|syncbn|loss");
    return 1;
}
set_num_threads(1);
using var context = DistributedContext.Open();
var c = context.Communicator;
if (Batch % c.Size != 0)
{
    Console.Error.WriteLine($"the batch of {Batch} does not split over {c.Size} ranks");
    return 2;
}
long n = Batch / c.Size, first = n * c.Rank;
var report = new Dictionary<string, object> { ["rank"] = c.Rank, ["size"] = c.Size, ["scenario"] = args[0] };

double MaxDiff(Tensor a, Tensor b) => (a.to_type(ScalarType.Float64) - b.to_type(ScalarType.Float64)).abs().max().item<double>();
double MaxAbs(Tensor a) => a.to_type(ScalarType.Float64).abs().max().item<double>();
Tensor Flat(IEnumerable<Parameter> ps) => cat(ps.Select(p => p.grad!.flatten()).ToList());
Tensor Rows(Tensor t) => t.narrow(0, first, n);

switch (args[0])
{
    case "gradients":
    {
        // Linear → tanh → Linear, mean squared error: the averaged gradients of the halves are the whole batch's.
        Sequential Model(int seed) { manual_seed(seed); return nn.Sequential(nn.Linear(6, 5, dtype: ScalarType.Float64), nn.Tanh(), nn.Linear(5, 3, dtype: ScalarType.Float64)); }
        manual_seed(7);
        var x = randn(Batch, 6, ScalarType.Float64);
        var target = randn(Batch, 3, ScalarType.Float64);

        var reference = Model(1);
        nn.functional.mse_loss(reference.forward(x), target).backward();
        var expected = Flat(reference.parameters());

        var model = Model(1);
        using var averager = new GradientAverager(model.parameters(), c);
        nn.functional.mse_loss(model.forward(Rows(x)), Rows(target)).backward();
        report["inBuffer"] = Enumerable.Range(0, model.parameters().Count()).All(averager.GradientIsInBuffer);
        report["controlDiff"] = MaxDiff(averager.Buffer, expected);
        averager.Average();
        report["maxDiff"] = MaxDiff(averager.Buffer, expected);
        report["maxAbs"] = MaxAbs(expected);

        // Second step: gradients zeroed in place, one of them replaced by a tensor of its own (the copy path).
        averager.Buffer.zero_();
        model.parameters().First().grad = null;
        nn.functional.mse_loss(model.forward(Rows(x)), Rows(target)).backward();
        averager.Average();
        report["maxDiffReplaced"] = MaxDiff(averager.Buffer, expected);
        report["inBufferAfterReplace"] = averager.GradientIsInBuffer(0);
        break;
    }
    case "syncbn":
    {
        // Linear → BN → ReLU → Linear → BN without affine (the predictor's shape); each rank starts from other weights,
        // rank 0's are broadcast.
        Sequential Model(int seed)
        {
            manual_seed(seed);
            var m = nn.Sequential(nn.Linear(6, 8, hasBias: false, dtype: ScalarType.Float64), nn.BatchNorm1d(8, dtype: ScalarType.Float64), nn.ReLU(),
                                  nn.Linear(8, 4, hasBias: false, dtype: ScalarType.Float64), nn.BatchNorm1d(4, affine: false, dtype: ScalarType.Float64));
            using (no_grad())
                foreach (var bn in m.children().OfType<BatchNorm1d>())
                {
                    bn.weight?.uniform_(0.5, 1.5);
                    bn.bias?.normal_(0, 0.1);
                }
            return m;
        }
        Tensor Forward(Sequential m, Tensor input, bool sync)
        {
            foreach (var layer in m.children())
                input = layer is BatchNorm1d bn && sync ? SyncBatchNorm.Forward(bn, input, c) : ((nn.Module<Tensor, Tensor>)layer).forward(input);
            return input;
        }
        manual_seed(7);
        var x = randn(Batch, 6, ScalarType.Float64) * 2 + 1;
        var target = randn(Batch, 4, ScalarType.Float64);

        var reference = Model(1);
        var expectedOut = reference.forward(x);
        nn.functional.mse_loss(expectedOut, target).backward();
        var expected = Flat(reference.parameters());

        var model = Model(1 + c.Rank);
        ModelBroadcast.FromRoot(model, c);
        using var averager = new GradientAverager(model.parameters(), c);
        var output = Forward(model, Rows(x), sync: true);
        nn.functional.mse_loss(output, Rows(target)).backward();
        averager.Average();
        report["outputDiff"] = MaxDiff(output, Rows(expectedOut));
        report["maxDiff"] = MaxDiff(averager.Buffer, expected);
        report["maxAbs"] = MaxAbs(expected);
        var stats = (Sequential s) => cat(s.children().OfType<BatchNorm1d>().SelectMany(b => new[] { b.running_mean!, b.running_var! }).ToList());
        report["runningStatsDiff"] = MaxDiff(stats(model), stats(reference));
        report["runningStatsMoved"] = MaxDiff(stats(reference), stats(Model(1)));

        var control = Model(1);
        using var controlAverager = new GradientAverager(control.parameters(), c);
        nn.functional.mse_loss(Forward(control, Rows(x), sync: false), Rows(target)).backward();
        controlAverager.Average();
        report["controlDiff"] = MaxDiff(controlAverager.Buffer, expected);
        break;
    }
    case "loss":
    {
        // MoCo v3's loss with keys gathered from every rank against the one-process loss on the whole batch (fp32).
        const double Tau = 0.2;
        manual_seed(7);
        var q = randn(Batch, 16);
        var k = randn(Batch, 16);

        var qAll = q.clone().requires_grad_();
        var expectedLoss = MoCo.ContrastiveLoss(qAll, k, Tau);
        expectedLoss.backward();

        var qLocal = Rows(q).clone().requires_grad_();
        var loss = DistributedContrastiveLoss.Compute(qLocal, Rows(k), Tau, c);
        loss.backward();
        var meanLoss = loss.detach().clone();
        c.AllReduceSum(meanLoss);
        meanLoss.div_(c.Size);
        report["loss"] = meanLoss.item<float>();
        report["expectedLoss"] = expectedLoss.item<float>();
        // The local loss is a mean over N rows, the whole batch's over S·N: local gradients are S times the whole batch's rows.
        report["maxDiff"] = MaxDiff(qLocal.grad! / c.Size, Rows(qAll.grad!));
        report["maxAbs"] = MaxAbs(qAll.grad!);
        var controlLoss = MoCo.ContrastiveLoss(Rows(q), Rows(k), Tau).detach().clone();
        c.AllReduceSum(controlLoss);
        report["controlLoss"] = controlLoss.item<float>() / c.Size;
        break;
    }
}
c.Barrier();
using (var stdout = Console.OpenStandardOutput())
    stdout.Write(Encoding.UTF8.GetBytes(JsonSerializer.Serialize(report) + "\n"));
return 0;
