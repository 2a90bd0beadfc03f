namespace MoCoV3.Checkpoints;

/// <summary>
/// The kind of file a checkpoint comes in, apart from its key layout (<see cref="CheckpointFormat"/>): a torch.save or a
/// safetensors file can hold the official, MMSelfSup, timm or torchvision layout, told apart by its keys.
/// </summary>
public enum CheckpointContainer
{
    /// <summary>This toolkit's own <c>.ckpt</c> (<c>MOCOV3CK</c> magic).</summary>
    Toolkit,

    /// <summary>A <c>torch.save</c> zip archive (<c>.pth</c>, <c>.pth.tar</c>, <c>.bin</c>).</summary>
    TorchSave,

    /// <summary>A Hugging Face <c>.safetensors</c> file (see <see cref="SafeTensorsFile"/>).</summary>
    SafeTensors,
}
