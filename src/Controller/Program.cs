using Csi.V1;
using Microsoft.AspNetCore.Builder;
using SolarCsi.Controller;
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
try
{
    options = ControllerCertificate.WithCertificates(options);
}
catch (Exception e) when (e is FormatException or IOException or InvalidOperationException or System.Security.Cryptography.CryptographicException)
{
    log.Fatal("solar-controller: no control-plane certificate: {Reason}", e.Message);
    return 1;
}
using var plane = new ControllerPlane(options);
var readiness = new Readiness();
var identity = new PluginIdentity(options.DriverName, [
    .. ControllerPlane.PluginCapabilities,
    PluginIdentity.Service(PluginCapability.Types.Service.Types.Type.VolumeAccessibilityConstraints),
    PluginIdentity.OnlineExpansion(),
]);

var csi = GrpcServer.Build(options.CsiEndpoint, log, services => plane.AddServices(services).AddSingleton(identity).AddSingleton(readiness), app =>
{
    app.MapGrpcService<IdentityService>();
    ControllerPlane.MapServices(app);
});
var registry = plane.BuildRegistry(log);

plane.RegisterMetrics(SolarCsi.Core.Metrics.PluginMetrics.Current, csi.Services);
var metrics = options.MetricsAddress is { } metricsAddress
    ? SolarCsi.Core.Metrics.MetricsServer.Build(metricsAddress, log, SolarCsi.Core.Metrics.PluginMetrics.Current)
    : null;
if (metrics is not null) await metrics.StartAsync();
await registry.StartAsync();
await csi.StartAsync();
log.Information("controller serving CSI on {Csi}, agent registry on {Registry}; ready after a {WarmUp} s warm-up",
    options.CsiEndpoint, options.RegistryEndpoint, plane.Directory.WarmUp.TotalSeconds);
// Probe says "not ready" until agents have had time to announce themselves (see AgentDirectory.WarmUp).
_ = plane.WaitWarmAsync(CancellationToken.None).ContinueWith(_ => readiness.MarkReady(), TaskScheduler.Default);

if (options.Issuer is { SelfIssuedDir: { } ownDir } issuer)
    _ = Task.Run(async () =>
    {
        while (true)
        {
            await Task.Delay(TimeSpan.FromMinutes(10));
            try { ControllerCertificate.EnsureCurrent(issuer, ownDir); }
            catch (Exception e) when (e is IOException or System.Security.Cryptography.CryptographicException)
            {
                log.Warning("could not renew the controller's own certificate in {Dir}: {Reason}", ownDir, e.Message);
            }
        }
    });

await Task.WhenAny(csi.WaitForShutdownAsync(), registry.WaitForShutdownAsync());
await Task.WhenAll(csi.StopAsync(), registry.StopAsync(), metrics?.StopAsync() ?? Task.CompletedTask);
return 0;
