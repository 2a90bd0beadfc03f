namespace MoCoV3;

/// <summary>
/// Input data that does not have the expected format: a truncated or corrupt file, a header that disagrees with the
/// payload, a bad row of a manifest. The message starts with the file path and says what was expected and what was found.
/// </summary>
public sealed class DataFormatException : Exception
{
    /// <param name="file">The file (or folder) whose content is wrong.</param>
    /// <param name="offset">Where in it, if known: a byte offset for binary files, a 1-based line for text files.</param>
    /// <param name="detail">What was expected and what was found; it follows "<paramref name="file"/>: " in the message.</param>
    /// <param name="innerException">The error that revealed the problem, if any.</param>
    public DataFormatException(string file, long? offset, string detail, Exception? innerException = null)
        : base($"{file}: {detail}", innerException)
    {
        File = file;
        Offset = offset;
    }

    /// <summary>The file (or folder) whose content is wrong.</summary>
    public string File { get; }

    /// <summary>A byte offset for binary files, a 1-based line number for text files; <c>null</c> when not known.</summary>
    public long? Offset { get; }

    /// <summary>An error at a byte offset of a binary file; the message reads "FILE: at byte N: DETAIL".</summary>
    public static DataFormatException AtByte(string file, long offset, string detail, Exception? innerException = null) =>
        new(file, offset, $"at byte {offset}: {detail}", innerException);

    /// <summary>An error on a line of a text file; the message reads "FILE: line N: DETAIL".</summary>
    public static DataFormatException AtLine(string file, long line, string detail, Exception? innerException = null) =>
        new(file, line, $"line {line}: {detail}", innerException);
}
