using System.CommandLine;
using MoCoV3.Cli.Commands;

var root = new RootCommand("MoCoV3.NET: MoCo v3 self-supervised pretraining, export and evaluation for .NET")
{
    PresetsCommand.Create(),
    PretrainCommand.Create(),
    BenchCommand.Create(),
    ExportCommand.Create(),
    ConvertCommand.Create(),
    ProbeCommand.Create(),
    FineTuneCommand.Create(),
    LinclsCommand.Create(),
    KnnCommand.Create(),
    EmbedCommand.Create(),
    QuickstartCommand.Create(),
    MpiCommand.Create(),
    NcclCommand.Create(),
};
return root.Parse(args).Invoke();
