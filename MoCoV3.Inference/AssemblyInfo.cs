using System.Runtime.CompilerServices;

[assembly: InternalsVisibleTo("MoCoV3.Inference.ML")]
[assembly: InternalsVisibleTo("MoCoV3.Toolkit")]
[assembly: InternalsVisibleTo("MoCoV3.Export")]
[assembly: InternalsVisibleTo("MoCoV3.Eval")]
[assembly: InternalsVisibleTo("MoCoV3.Tests")]
