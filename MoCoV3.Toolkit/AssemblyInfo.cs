using System.Runtime.CompilerServices;

[assembly: InternalsVisibleTo("MoCoV3.Tests")]
[assembly: InternalsVisibleTo("MpiHost")] // the NCCL watchdog scenario of tests/MpiHost (its end over real MPI, a fake GPU stream)
