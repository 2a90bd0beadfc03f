using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MoCoV3.Models;

/// <summary>Splits an image into non-overlapping P x P patches and projects each to D dims (a stride-P conv).</summary>
public sealed class PatchEmbed : nn.Module<Tensor, Tensor>
{
    private readonly Conv2d proj;

    public PatchEmbed(int channels, int patchSize, int dim) : base(nameof(PatchEmbed))
    {
        proj = nn.Conv2d(channels, dim, kernel_size: patchSize, stride: patchSize);
        RegisterComponents();
    }

    public Conv2d Projection => proj;

    /// <summary><c>[N, C, H, W]</c> to tokens <c>[N, H/P * W/P, D]</c>, row-major.</summary>
    public override Tensor forward(Tensor x) => Autocast.Conv2d(proj, x).flatten(2).transpose(1, 2);
}
