using System.CommandLine;

namespace MoCoV3.Cli.Commands;

/// <summary>The <c>--amp</c> flag of <c>pretrain</c> and <c>bench</c>.</summary>
internal static class AmpOption
{
    public static Option<bool> Create() => new("--amp")
    {
        Description = "bf16 mixed precision (as torch.autocast): matmuls, convolutions and attention in bf16 from fp32 master weights; " +
                      "LayerNorm, BatchNorm statistics, the loss and the optimiser in fp32. Meant for CUDA: on CPUs without native bf16 it is slower",
    };
}
