using MoCoV3.Models;

namespace MoCoV3.Checkpoints;

/// <summary>
/// Pretrained weights a command starts from (lincls, finetune, export): a checkpoint of this toolkit, the official moco-v3,
/// MMSelfSup, timm or torchvision, as a <c>torch.save</c> or safetensors file; its key layout is read from its keys unless
/// <see cref="Format"/> says, and its architecture from its shapes unless <see cref="Arch"/> names the preset.
/// </summary>
public sealed record WeightsOptions
{
    public required string Checkpoint { get; init; }
    public CheckpointFormat? Format { get; init; }
    public ModelPreset? Arch { get; init; }
}
