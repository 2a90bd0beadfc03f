using System.Runtime.CompilerServices;

[assembly: InternalsVisibleTo("MoCoV3.Tests")]
