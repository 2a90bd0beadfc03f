using MoCoV3.Data;
using MoCoV3.Training;

namespace MoCoV3.Cli.Commands;

/// <summary>Turns the toolkit's expected failures into one clear line on stderr and an exit code.</summary>
internal static class CliErrors
{
    public const int BadInput = 2;
    public const int TrainingFailed = 3;
    public const int Interrupted = 130;

    public static int Run(Func<int> action)
    {
        try
        {
            return action();
        }
        catch (Exception e) when (e is NonFiniteLossException or CheckpointWriteException)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            return TrainingFailed;
        }
        catch (Exception e) when (e is DataFormatException or InvalidDataException or FileNotFoundException
                                     or DirectoryNotFoundException or ArgumentException or InvalidOperationException
                                     or UnauthorizedAccessException or IOException)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            return BadInput;
        }
    }
}
