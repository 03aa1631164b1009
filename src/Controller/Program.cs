using Csi.V1;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using SolarCsi.Controller;
using SolarCsi.Controller.Agents;
using SolarCsi.Controller.Csi;
using SolarCsi.Core.Concurrency;
using SolarCsi.Core.Hosting;

ControllerOptions options;
try
{
    var cl = new CommandLine(args, ControllerOptions.Flags);
    if (cl.HelpRequested) { Console.WriteLine(cl.Usage("solar-controller")); return 0; }
    options = ControllerOptions.Parse(cl);
}
catch (FormatException e)
{
    Console.Error.WriteLine($"solar-controller: {e.Message}");
    return 2;
}

var log = Logging.Create("controller");
using var directory = new AgentDirectory(TimeProvider.System, options.AgentTimeout);
var readiness = new Readiness();
var identity = new PluginIdentity(options.DriverName, [
    PluginIdentity.Service(PluginCapability.Types.Service.Types.Type.ControllerService),
    PluginIdentity.Service(PluginCapability.Types.Service.Types.Type.VolumeAccessibilityConstraints),
    PluginIdentity.Service(PluginCapability.Types.Service.Types.Type.GroupControllerService),
    PluginIdentity.OnlineExpansion(),
]);

var csi = GrpcServer.Build(options.CsiEndpoint, log, services =>
{
    services.AddSingleton(identity).AddSingleton(readiness).AddSingleton(directory).AddSingleton<Inventory>()
        .AddSingleton<InFlightTracker>().AddSingleton<NodeAttachLimits>();
}, app =>
{
    app.MapGrpcService<IdentityService>();
    app.MapGrpcService<ControllerService>();
    app.MapGrpcService<GroupControllerService>();
});
var registry = GrpcServer.Build(options.RegistryEndpoint, log, services =>
{
    services.AddSingleton(directory).AddSingleton(options);
}, app => app.MapGrpcService<RegistryService>());

// Known agents, by whether the controller still hears from them.
SolarCsi.Core.Metrics.PluginMetrics.Current.AddCollector(_ => Task.FromResult<IEnumerable<SolarCsi.Core.Metrics.GaugeSample>>(
[
    new("solar_agents", "node agents known to the controller, by state", [new("state", "live")], directory.Live().Count),
]));
var metrics = options.MetricsAddress is { } metricsAddress
    ? SolarCsi.Core.Metrics.MetricsServer.Build(metricsAddress, log, SolarCsi.Core.Metrics.PluginMetrics.Current)
    : null;
if (metrics is not null) await metrics.StartAsync();
await registry.StartAsync();
await csi.StartAsync();
log.Information("controller serving CSI on {Csi}, agent registry on {Registry}; ready after a {WarmUp} s warm-up",
    options.CsiEndpoint, options.RegistryEndpoint, directory.WarmUp.TotalSeconds);
// Probe says "not ready" until agents have had time to announce themselves (see AgentDirectory.WarmUp).
_ = Task.Delay(directory.WarmUp).ContinueWith(_ => readiness.MarkReady(), TaskScheduler.Default);

await Task.WhenAny(csi.WaitForShutdownAsync(), registry.WaitForShutdownAsync());
await Task.WhenAll(csi.StopAsync(), registry.StopAsync(), metrics?.StopAsync() ?? Task.CompletedTask);
return 0;
