namespace MoCoV3.Tests.Fuzz;

/// <summary>
/// A valid file the fuzzer starts from. <paramref name="FileName"/> gives the cases their extension;
/// <paramref name="Mutate"/>, when given, replaces the plain byte mutator (e.g. to mutate a member of an archive and
/// re-pack it, so that checksums do not stop every case at the first check).
/// </summary>
internal sealed record FuzzSeed(string FileName, byte[] Bytes, Func<byte[], Random, List<string>, byte[]>? Mutate = null);
