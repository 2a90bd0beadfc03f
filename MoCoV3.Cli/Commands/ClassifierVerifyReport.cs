using MoCoV3.Eval.Classification;

namespace MoCoV3.Cli.Commands;

/// <summary>How <c>finetune</c> and <c>lincls --onnx</c> print the check of their exported classifier, and its exit code.</summary>
internal static class ClassifierVerifyReport
{
    /// <summary>Prints the differences and <c>verify: passed</c> (0), or an error on stderr (<see cref="ExportCommand.VerifyFailed"/>).</summary>
    public static int Print(string onnxPath, ClassifierVerifyResult verify)
    {
        var logits = verify.Logits;
        Console.WriteLine(FormattableString.Invariant(
            $"max_abs_diff={logits.MaxAbsDiff:G3} (logits; embedding {verify.Embedding.MaxAbsDiff:G3}) cosine_min={logits.CosineMin:F6} batch={logits.Batch}"));
        if (verify.Passed)
        {
            Console.WriteLine("verify: passed");
            return 0;
        }
        Console.Error.WriteLine(FormattableString.Invariant(
            $"error: verify failed: {onnxPath}: ONNX Runtime and TorchSharp differ by {logits.MaxAbsDiff:G3} (logits, bound {logits.Fp32Bound:G3}) / {verify.Embedding.MaxAbsDiff:G3} (embedding, bound {verify.Embedding.Fp32Bound:G3})"));
        return ExportCommand.VerifyFailed;
    }
}
