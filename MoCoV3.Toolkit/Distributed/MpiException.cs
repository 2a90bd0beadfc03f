namespace MoCoV3.Distributed;

/// <summary>An MPI call returned an error (the world communicator returns errors instead of aborting the job).</summary>
public sealed class MpiException(string call, int code, string description)
    : InvalidOperationException($"{call} failed with MPI error {code}: {description}")
{
    public string Call { get; } = call;
    public int Code { get; } = code;
}
