using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MoCoV3.Models;

/// <summary>
/// The projector and predictor MLPs of MoCo v3 (official builder): every layer a bias-free Linear; hidden
/// layers followed by BatchNorm (affine) and ReLU; the last layer optionally followed by a BatchNorm
/// without γ or β. Children are numbered as in PyTorch's <c>nn.Sequential</c> ("0", "1", ...).
/// </summary>
public static class ProjectionMlp
{
    public static Sequential Build(int layers, int inDim, int hiddenDim, int outDim, bool lastBn)
    {
        var modules = new List<(string, nn.Module<Tensor, Tensor>)>();
        void Add(nn.Module<Tensor, Tensor> m) => modules.Add((modules.Count.ToString(), m));
        for (int l = 0; l < layers; l++)
        {
            int a = l == 0 ? inDim : hiddenDim;
            int b = l == layers - 1 ? outDim : hiddenDim;
            Add(nn.Linear(a, b, hasBias: false));
            if (l < layers - 1)
            {
                Add(nn.BatchNorm1d(b));
                Add(nn.ReLU(inplace: true));
            }
            else if (lastBn)
            {
                Add(nn.BatchNorm1d(b, affine: false));
            }
        }
        return nn.Sequential(modules);
    }
}
