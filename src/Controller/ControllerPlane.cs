using Csi.V1;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using SolarCsi.Controller.Agents;
using SolarCsi.Controller.Csi;
using SolarCsi.Controller.Placement;
using SolarCsi.Core.Concurrency;
using SolarCsi.Core.Hosting;
using SolarCsi.Core.Metrics;

namespace SolarCsi.Controller;

/// <summary>
/// The controller's CSI services and the agent registry they depend on, composed once for both hosts that run them:
/// solar-controller, and solar-node in all-in-one mode (controller and node in one process, one CSI endpoint).
/// </summary>
public sealed class ControllerPlane : IDisposable
{
    private readonly ControllerOptions _options;

    /// <param name="allNodes">where every node there will ever be is known up front (all-in-one: the process's own node),
    /// the warm-up ends as soon as each has announced itself instead of after half the agent timeout.</param>
    public ControllerPlane(ControllerOptions options, IReadOnlyCollection<string>? allNodes = null)
    {
        _options = options;
        Directory = new AgentDirectory(TimeProvider.System, options.AgentTimeout, allNodes, options.Tls);
    }

    public AgentDirectory Directory { get; }

    public static readonly PluginCapability[] PluginCapabilities =
    [
        PluginIdentity.Service(PluginCapability.Types.Service.Types.Type.ControllerService),
        PluginIdentity.Service(PluginCapability.Types.Service.Types.Type.GroupControllerService),
    ];

    /// <summary>What the Controller and GroupController services need, in the host that serves them.</summary>
    public IServiceCollection AddServices(IServiceCollection services) =>
        // Its own in-flight tracker: in all-in-one mode the node's tracker guards the agent's work on the same
        // volume ids, and a controller call waits on its agent call.
        services.AddSingleton(Directory).AddSingleton(_options).AddSingleton<Inventory>().AddSingleton(new InFlightTracker()).AddSingleton<NodeAttachLimits>()
            .AddSingleton(sp => new NameClaims(_options.StateDir, sp.GetRequiredService<Microsoft.Extensions.Logging.ILogger<NameClaims>>()))
            .AddSingleton<OrphanSweep>().AddHostedService(sp => sp.GetRequiredService<OrphanSweep>());

    public static void MapServices(WebApplication app)
    {
        app.MapGrpcService<ControllerService>();
        app.MapGrpcService<GroupControllerService>();
    }

    /// <summary>The endpoint node agents announce themselves to, and ask for their certificates at (with --ca-dir).</summary>
    public WebApplication BuildRegistry(Serilog.ILogger log) =>
        GrpcServer.Build(_options.RegistryEndpoint, log, services =>
            {
                services.AddSingleton(Directory).AddSingleton(_options);
                if (_options.Issuer is { } issuer)
                    services.AddSingleton(sp => new NodeCertificateIssuer(issuer.CaDir, issuer.TokenFile, issuer.Validity, _options.StateDir, TimeProvider.System,
                        sp.GetRequiredService<Microsoft.Extensions.Logging.ILogger<NodeCertificateIssuer>>()));
            },
            app => app.MapGrpcService<RegistryService>(),
            // Only nodes announce themselves; which node a certificate may speak for is checked per heartbeat. A node
            // without a certificate yet may connect to ask for one (bootstrap token): every other call refuses it.
            _options.Tls is { } tls ? (tls, id => SolarCsi.Core.Hosting.Tls.ClusterTls.NodeIdOf(id) is not null) : null,
            certificateOptional: _options.Issuer is not null);

    /// <summary>Known agents, by whether the controller still hears from them; orphan volumes as of the last sweep.</summary>
    /// <param name="services">the CSI host's services (where the sweep runs).</param>
    public void RegisterMetrics(PluginMetrics metrics, IServiceProvider services)
    {
        var sweep = services.GetRequiredService<OrphanSweep>();
        metrics.AddCollector(_ => Task.FromResult<IEnumerable<GaugeSample>>(
        [
            new("solar_agents", "node agents known to the controller, by state", [new("state", "live")], Directory.Live().Count),
            new("solar_orphan_volumes", "volumes whose name belongs to another volume, or shared without a claim (see ListVolumes' volume_condition)",
                [], sweep.Orphans.Count),
        ]));
    }

    /// <summary>Completes once the controller may answer "not found anywhere" (see <see cref="AgentDirectory.WarmUp"/>).</summary>
    public async Task WaitWarmAsync(CancellationToken ct)
    {
        while (Directory.WarmingUp) await Task.Delay(50, ct);
    }

    public void Dispose() => Directory.Dispose();
}
