namespace MoCoV3.Distributed;

/// <summary>What started this process, as its environment tells.</summary>
public enum Launcher
{
    /// <summary>No launcher: one process, as a plain command line starts it.</summary>
    None,

    /// <summary>Open MPI's <c>mpirun</c> (sets <c>OMPI_COMM_WORLD_RANK</c>, <c>OMPI_COMM_WORLD_SIZE</c>).</summary>
    OpenMpi,

    /// <summary>MPICH's Hydra <c>mpiexec</c> or another PMI launcher (sets <c>PMI_RANK</c>, <c>PMI_SIZE</c>).</summary>
    Mpich,

    /// <summary>A <c>torchrun</c>-style launcher (sets <c>RANK</c>, <c>WORLD_SIZE</c>, <c>LOCAL_RANK</c>).</summary>
    Torchrun,
}
