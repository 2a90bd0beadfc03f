namespace MoCoV3.Checkpoints;

/// <summary>The checkpoint layouts the toolkit reads (and, for some, writes). Names parse case-insensitively from the CLI.</summary>
public enum CheckpointFormat
{
    /// <summary>This toolkit's own checkpoint (<c>MOCOV3CK</c> magic, see <c>Checkpoints/CheckpointFile.cs</c>).</summary>
    Toolkit,

    /// <summary>facebookresearch/moco-v3 <c>.pth.tar</c>: <c>{'state_dict': {'module.base_encoder.…', 'module.momentum_encoder.…', 'module.predictor.…'}}</c>.</summary>
    Official,

    /// <summary>MMSelfSup 1.x / mmpretrain: <c>{'state_dict': {'backbone.…', 'neck.…', 'head.…', 'momentum_encoder.…'}, 'meta': …}</c>, mmcls ViT names.</summary>
    MMSelfSup,

    /// <summary>A flat timm ViT state dict (our ViT names), possibly with a <c>head.weight</c>/<c>head.bias</c> classifier.</summary>
    Timm,

    /// <summary>A flat torchvision ResNet state dict (our ResNet names), possibly with an <c>fc.weight</c>/<c>fc.bias</c> classifier.</summary>
    Torchvision,
}
