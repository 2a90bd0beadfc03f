namespace MoCoV3.Eval.Quickstart;

/// <summary>Names of the main job's stages, as reported in <see cref="QuickstartResult.Stages"/>.</summary>
public static class QuickstartStages
{
    public const string Pretrain = "pretrain";
    public const string Export = "export+verify";
    public const string Probe = "probe+baselines";
}
