using System.Runtime.CompilerServices;

[assembly: InternalsVisibleTo("MoCoV3.Tests")]
[assembly: InternalsVisibleTo("MpiHost")] // the data-parallel controls of tests/MpiHost
