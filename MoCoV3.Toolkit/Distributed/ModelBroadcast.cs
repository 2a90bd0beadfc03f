using static TorchSharp.torch;

namespace MoCoV3.Distributed;

/// <summary>
/// Makes every rank's module equal to rank <c>root</c>'s: each parameter and buffer of the state dict (running
/// statistics and counters included) broadcast in place, in the state dict's order, which is the same on every rank for
/// the same architecture. Done at the start of data-parallel training and after loading weights on rank 0.
/// </summary>
public static class ModelBroadcast
{
    public static void FromRoot(nn.Module module, ICommunicator communicator, int root = 0)
    {
        if (communicator.Size == 1) return;
        foreach (var (name, tensor) in module.state_dict())
        {
            try
            {
                communicator.Broadcast(tensor, root);
            }
            catch (ArgumentException e)
            {
                throw new ArgumentException($"{name}: {e.Message}", e);
            }
        }
    }
}
