using Microsoft.Extensions.DependencyInjection;
using Serilog.Extensions.Logging;
using SolarCsi.Core.Hosting;
using SolarCsi.Node.Processes;

namespace SolarCsi.Node.DataPlane;

/// <summary>
/// <c>solar-node dataplane --endpoint unix://… --state-dir DIR</c>: the node's data-plane host (deploy/base/dataplane.yaml).
/// It holds no state of its own: the helpers it starts write their pid files and logs into the node plugin's state
/// directory, where the plugin finds, checks and stops them as before. Stopping this process leaves its helpers
/// running; only stopping its container (or the node) ends them.
/// </summary>
public static class DataPlaneHost
{
    public const string Command = "dataplane";

    public static readonly IReadOnlyDictionary<string, string> Flags = new Dictionary<string, string>
    {
        ["endpoint"] = "unix:// socket the node plugin calls (its --dataplane-endpoint)",
        ["state-dir"] = "the node plugin's --state-dir; helpers' logs must be under it (default /var/lib/solar-csi)",
    };

    public static async Task<int> RunAsync(IReadOnlyList<string> args)
    {
        GrpcEndpoint endpoint;
        string stateDir;
        try
        {
            var cl = new CommandLine(args, Flags);
            if (cl.HelpRequested) { Console.WriteLine(cl.Usage($"solar-node {Command}")); return 0; }
            endpoint = GrpcEndpoint.Parse(cl.Get("endpoint") ?? throw new FormatException("--endpoint is required"));
            if (!endpoint.IsUnix) throw new FormatException("--endpoint must be unix://: the data-plane host never listens on the network");
            stateDir = Path.GetFullPath(cl.Get("state-dir", "/var/lib/solar-csi"));
        }
        catch (FormatException e)
        {
            await Console.Error.WriteLineAsync($"solar-node {Command}: {e.Message}");
            return 2;
        }

        var log = Logging.Create("dataplane");
        using var loggerFactory = new SerilogLoggerFactory(log);
        var runner = new ProcessRunner(loggerFactory.CreateLogger<ProcessRunner>());
        var spawner = new LocalDaemonSpawner(runner, await SolarCsi.Node.Nbd.TlsCipherPolicy.EnvironmentAsync(stateDir, CancellationToken.None));
        var app = GrpcServer.Build(endpoint, log, services => services.AddSingleton(new DataPlaneService.Settings(stateDir, spawner)),
            a => a.MapGrpcService<DataPlaneService>());
        await app.StartAsync();
        log.Information("data-plane host serving {Endpoint} for state dir {StateDir}", endpoint, stateDir);
        await app.WaitForShutdownAsync();
        return 0;
    }
}
