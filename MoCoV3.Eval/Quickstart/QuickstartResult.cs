using MoCoV3.Eval.Probe;
using MoCoV3.Training;

namespace MoCoV3.Eval.Quickstart;

/// <summary>What the main job measured: the probe of the pretrained encoder and of the two baselines, and where time went.</summary>
public sealed record QuickstartResult
{
    public required PretrainResult Pretrain { get; init; }

    /// <summary>The exported encoder.</summary>
    public required string EncoderPath { get; init; }

    /// <summary>ONNX Runtime against TorchSharp on real test images.</summary>
    public required Export.VerifyResult Verify { get; init; }

    /// <summary>The MoCo v3 encoder, raw pixels, random-init encoder (in that order, as <see cref="LinearProbe.RunWithBaselines"/>).</summary>
    public required IReadOnlyList<ProbeResult> Probes { get; init; }

    /// <summary>Wall-clock seconds per stage: pretrain, export (with verify), probe (encoder and baselines).</summary>
    public required IReadOnlyList<StageTime> Stages { get; init; }

    /// <summary>The table written next to the run (one row per probed representation).</summary>
    public required string ReportPath { get; init; }

    public ProbeResult Encoder => Probes[0];

    /// <summary>True when the pretrained encoder's top-1 beats both baselines.</summary>
    public bool BeatsBaselines => Probes.Skip(1).All(b => Encoder.Top1 > b.Top1);
}
