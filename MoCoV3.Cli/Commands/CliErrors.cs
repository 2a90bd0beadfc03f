using MoCoV3.Data;
using MoCoV3.Training;

namespace MoCoV3.Cli.Commands;

/// <summary>Turns the toolkit's expected failures into one clear line on stderr and an exit code.</summary>
internal static class CliErrors
{
    public const int Unexpected = 1;
    public const int BadInput = 2;
    public const int TrainingFailed = 3;
    public const int Interrupted = 130;

    public static int Run(Func<int> action)
    {
        try
        {
            return action();
        }
        catch (Exception e) when (CodeOf(e) is int code)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            return code;
        }
    }

    /// <summary>The exit code of an expected failure; null for an unexpected one (a bug, whose stack trace is worth showing).</summary>
    public static int? CodeOf(Exception e) => e switch
    {
        NonFiniteLossException or CheckpointWriteException => TrainingFailed,
        DataFormatException or InvalidDataException or FileNotFoundException or DirectoryNotFoundException or ArgumentException
            or InvalidOperationException or UnauthorizedAccessException or IOException => BadInput,
        _ => null,
    };
}
