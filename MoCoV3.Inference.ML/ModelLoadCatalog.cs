using MoCoV3.IO;

namespace Microsoft.ML;

/// <summary>
/// <c>mlContext.Model.LoadVerified(path, out schema)</c>: loads a saved ML.NET model (a <c>probe.zip</c> of
/// <c>mocov3 probe</c>, say) after checking every entry of its zip against the CRC-32 the zip records, which
/// <c>mlContext.Model.Load</c> does not do: a model with flipped bytes is refused with an error naming the file and the
/// entry instead of predicting with damaged weights.
/// </summary>
public static class ModelLoadCatalog
{
    /// <summary>Checks the zip at <paramref name="filePath"/> entry by entry, then loads it with <see cref="ModelOperationsCatalog.Load(string, out DataViewSchema)"/>.</summary>
    /// <exception cref="FileNotFoundException">No file at <paramref name="filePath"/>.</exception>
    /// <exception cref="InvalidDataException">Not a zip, or an entry does not match its CRC-32 (the message names the file and
    /// the entry), or ML.NET cannot load what the zip holds (the message names the file).</exception>
    public static ITransformer LoadVerified(this ModelOperationsCatalog catalog, string filePath, out DataViewSchema inputSchema)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        ZipIntegrity.VerifyFile(filePath);
        try
        {
            return catalog.Load(filePath, out inputSchema);
        }
        catch (Exception e) when (e is FormatException or InvalidOperationException or ArgumentException)
        {
            // Entries whose bytes are intact can still be misnamed (a damaged central directory): say which file.
            throw new InvalidDataException($"{filePath}: ML.NET cannot load the model: {e.GetType().Name}: {e.Message}", e);
        }
    }
}
