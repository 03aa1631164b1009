using Grpc.Core;
using SolarCsi.Core.Errors;
using SolarCsi.DataPlane.V1;
using SolarCsi.Node.Processes;

namespace SolarCsi.Node.DataPlane;

/// <summary>
/// The data-plane host's API. It starts only the helpers the node plugin runs for the NBD data path, with their
/// logs in the shared state directory; anything else is refused. The socket is 0600 and root's: this is a second
/// line, so a confused or compromised caller cannot turn it into a general-purpose exec service.
/// </summary>
public sealed class DataPlaneService(DataPlaneService.Settings settings) : SolarCsi.DataPlane.V1.DataPlane.DataPlaneBase
{
    public sealed record Settings(string StateDir, IDaemonSpawner Spawner);

    public static readonly IReadOnlySet<string> Programs = new HashSet<string>(StringComparer.Ordinal) { "nbdkit", "nbdfuse" };
    public const int MaxArguments = 256;

    public override async Task<StartReply> Start(StartRequest request, ServerCallContext context)
    {
        Validate(request, settings.StateDir);
        await settings.Spawner.SpawnAsync(request.Program, request.Args, request.LogFile, context.CancellationToken);
        return new StartReply();
    }

    public override Task<DescribeReply> Describe(DescribeRequest request, ServerCallContext context) =>
        Task.FromResult(new DescribeReply { Pid = Environment.ProcessId, StateDir = settings.StateDir });

    public static void Validate(StartRequest request, string stateDir)
    {
        if (!Programs.Contains(request.Program))
            throw CsiErrors.InvalidArgument($"the data-plane host starts only {string.Join(" and ", Programs)}, not '{request.Program}'");
        if (request.Args.Count > MaxArguments) throw CsiErrors.InvalidArgument($"more than {MaxArguments} arguments");
        if (request.Args.Any(a => a.Contains('\0'))) throw CsiErrors.InvalidArgument("an argument holds a NUL character");
        var log = request.LogFile;
        if (string.IsNullOrEmpty(log) || !Path.IsPathFullyQualified(log) || Path.GetFullPath(log) != log ||
            !log.StartsWith(stateDir.TrimEnd('/') + "/", StringComparison.Ordinal))
            throw CsiErrors.InvalidArgument($"log file '{log}' must be an absolute, normalised path under {stateDir}");
    }
}
