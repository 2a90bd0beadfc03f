namespace MoCoV3.Distributed;

/// <summary>
/// The two MPI application binary interfaces on Linux. They share the C API but not its handles: Open MPI's
/// <c>MPI_COMM_WORLD</c>, <c>MPI_FLOAT</c>, <c>MPI_SUM</c> are addresses of exported objects and <c>MPI_IN_PLACE</c> is 1;
/// MPICH's (and those of the implementations built on it: Intel MPI, MVAPICH) are integer constants and <c>MPI_IN_PLACE</c> is -1.
/// </summary>
public enum MpiFlavour
{
    OpenMpi,
    Mpich,
}
