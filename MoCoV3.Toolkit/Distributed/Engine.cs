namespace MoCoV3.Distributed;

/// <summary>What carries a run's collectives.</summary>
public enum Engine
{
    /// <summary>No launcher: one process, no collectives.</summary>
    SingleProcess,
    /// <summary>mpirun / mpiexec on the CPU: MPI for everything.</summary>
    Mpi,
    /// <summary>mpirun / mpiexec on CUDA: NCCL for tensors, MPI for the unique id and host buffers.</summary>
    NcclOverMpi,
    /// <summary>torchrun-style on CUDA: NCCL for everything, bootstrapped at MASTER_ADDR:MASTER_PORT+1.</summary>
    Nccl,
}
