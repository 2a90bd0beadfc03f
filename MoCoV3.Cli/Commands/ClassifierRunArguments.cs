using System.CommandLine;
using MoCoV3.Checkpoints;
using MoCoV3.Data;
using MoCoV3.Models;
using MoCoV3.Runtime;

namespace MoCoV3.Cli.Commands;

/// <summary>
/// The options <c>lincls</c> and <c>finetune</c> share: the pretrained weights and how to read them, the labelled data,
/// the training crop, the seed and where to compute. Declared once so both commands spell and document them alike.
/// </summary>
internal sealed class ClassifierRunArguments
{
    public Option<string> Checkpoint { get; } = new("--checkpoint")
    {
        Description = "Pretrained weights: toolkit checkpoint, official moco-v3 .pth.tar, MMSelfSup, timm or torchvision",
        Required = true,
    };
    public Option<string?> Arch { get; } = new("--arch")
    {
        Description = "Preset name or JSON file (default: the checkpoint's own preset, or detected from the shapes)",
    };
    public Option<string> From { get; } = new("--from")
    {
        Description = "auto | toolkit | official | mmselfsup | timm | torchvision",
        DefaultValueFactory = _ => "auto",
    };
    public Option<string?> Data { get; } = new("--data")
    {
        Description = "Dataset folder or CSV manifest (default: /usr/share/datasets/fashion-mnist); needs a train and a test split",
    };
    public Option<string> Dataset { get; } = new("--dataset")
    {
        Description = "auto | fashion-mnist | imagefolder | csv",
        DefaultValueFactory = _ => "auto",
    };
    public Option<double> CropMin { get; } = new("--crop-min")
    {
        Description = "Smallest area fraction of the random resized crop (lincls: default the preset's lincls.crop_min, else 0.08)",
        DefaultValueFactory = _ => 0.08,
    };
    public Option<long> Seed { get; } = new("--seed") { Description = "Random seed", DefaultValueFactory = _ => 0 };
    public Option<int?> Limit { get; } = new("--limit") { Description = "Use only the first N training images" };
    public Option<int?> TestLimit { get; } = new("--test-limit") { Description = "Use only the first N test images" };
    public Option<string> Device { get; } = new("--device") { Description = "cpu | cuda | cuda:N", DefaultValueFactory = _ => "cpu" };
    public Option<string?> LibTorch { get; } = new("--libtorch")
    {
        Description = "Folder of a CUDA libtorch (e.g. a PyTorch install's torch/lib)",
    };
    public Option<int?> Threads { get; } = new("--threads") { Description = "CPU threads (default: all cores)" };

    public ClassifierRunArguments() =>
        From.AcceptOnlyFromAmong("auto", "toolkit", "official", "mmselfsup", "timm", "torchvision");

    /// <summary>Adds every shared option to <paramref name="command"/>.</summary>
    public void AddTo(Command command)
    {
        Option[] all = [Checkpoint, Arch, From, Data, Dataset, CropMin, Seed, Limit, TestLimit, Device, LibTorch, Threads];
        foreach (var option in all) command.Options.Add(option);
    }

    /// <summary>The weights of <c>--checkpoint</c>, <c>--from</c> and <c>--arch</c>.</summary>
    public WeightsOptions Weights(ParseResult r) => new() { Checkpoint = r.GetValue(Checkpoint)!, Format = Format(r), Arch = ArchPreset(r) };

    /// <summary>The data of <c>--data</c>, <c>--dataset</c>, <c>--limit</c> and <c>--test-limit</c>.</summary>
    public DataOptions DataOptions(ParseResult r) =>
        new() { Path = r.GetValue(Data), Kind = r.GetValue(Dataset)!, Limit = r.GetValue(Limit), TestLimit = r.GetValue(TestLimit) };

    /// <summary>Where to compute: <c>--device</c>, <c>--libtorch</c>, <c>--threads</c>.</summary>
    public ComputeOptions Compute(ParseResult r) => new() { Device = r.GetValue(Device)!, LibTorch = r.GetValue(LibTorch), Threads = r.GetValue(Threads) };

    /// <summary>The preset named by <c>--arch</c>, or null to take it from the checkpoint.</summary>
    public ModelPreset? ArchPreset(ParseResult r) => r.GetValue(Arch) is { } name ? PresetCatalog.Get(name) : null;

    /// <summary>The checkpoint format named by <c>--from</c>, or null to detect it.</summary>
    public CheckpointFormat? Format(ParseResult r) =>
        r.GetValue(From) is { } name && name != "auto" ? Enum.Parse<CheckpointFormat>(name, ignoreCase: true) : null;
}
