using Csi.V1;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Serilog.Extensions.Logging;
using SolarCsi.Core.Concurrency;
using SolarCsi.Core.Hosting;
using SolarCsi.Core.Validation;
using SolarCsi.Node;
using SolarCsi.Node.Agent;
using SolarCsi.Node.Attach;
using SolarCsi.Node.Csi;
using SolarCsi.Node.Devices;
using SolarCsi.Node.Mounts;
using SolarCsi.Node.Nbd;
using SolarCsi.Node.Pools;
using SolarCsi.Node.Pools.Disk;
using SolarCsi.Node.Pools.Lvm;
using SolarCsi.Node.Pools.Pmem;
using SolarCsi.Node.Processes;
using SolarCsi.Node.Staging;

// `solar-node prestop …` is the DaemonSet's preStop hook (Staging/PreStopHook.cs), not a plugin start.
if (args is [PreStopHook.Command, .. var hookArgs]) return await PreStopHook.RunAsync(hookArgs);
// `solar-node dataplane …` is the node's data-plane host (DataPlane/DataPlaneHost.cs), its own DaemonSet.
if (args is [SolarCsi.Node.DataPlane.DataPlaneHost.Command, .. var dataPlaneArgs]) return await SolarCsi.Node.DataPlane.DataPlaneHost.RunAsync(dataPlaneArgs);

CommandLine cl;
NodeOptions options;
try
{
    cl = new CommandLine(args, NodeOptions.Flags);
    if (cl.HelpRequested) { Console.WriteLine(cl.Usage("solar-node")); return 0; }
    options = NodeOptions.Parse(cl);
}
catch (FormatException e)
{
    Console.Error.WriteLine($"solar-node: {e.Message}");
    return 2;
}

var log = Logging.Create($"node {options.NodeId}");
// A state file that cannot be parsed is set aside and the rest is served (StateFiles); say so where operators look.
SolarCsi.Core.Storage.StateFiles.OnUnreadable = (path, aside, why) =>
    log.Error("state file {Path} is unreadable ({Why}); moved aside to {Aside}, what it described is kept (see solar node-state)", path, why, aside);
using var loggerFactory = new SerilogLoggerFactory(log);
try
{
    options = options with
    {
        Tls = await NodeCertificates.LoadOrObtainAsync(options, loggerFactory.CreateLogger<NodeCertificates>(), TimeSpan.FromMinutes(2), CancellationToken.None),
    };
}
catch (Exception e) when (e is InvalidOperationException or FormatException or IOException or System.Security.Cryptography.CryptographicException)
{
    log.Fatal("solar-node: no control-plane certificate: {Reason}", e.Message);
    return 1;
}
// Every tenant's volume image, key and record is under the state directory: root's alone (an existing one is
// tightened too).
const UnixFileMode OwnerOnly = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;
Directory.CreateDirectory(options.StateDir, OwnerOnly);
File.SetUnixFileMode(options.StateDir, OwnerOnly);
var layout = new NodeStateLayout(options.StateDir);
// The preStop hook finds this process's stderr by it (the pod shares the host's pid namespace).
Directory.CreateDirectory(Path.GetDirectoryName(layout.PluginPidFile)!);
await SolarCsi.Core.Storage.AtomicFile.WriteAsync(layout.PluginPidFile, System.Text.Encoding.ASCII.GetBytes($"{Environment.ProcessId}\n"), CancellationToken.None);

// Composition root: one instance of each, shared by the CSI and agent endpoints.
var runner = new ProcessRunner(loggerFactory.CreateLogger<ProcessRunner>());
var loops = new LoopDevices(runner);
var mounter = new LinuxMounter(runner);
var inFlight = new InFlightTracker();
var journal = new NodeJournal(layout.Journal);
// With a data-plane host the long-lived helpers belong to its container and outlive this one (a DaemonSet update or
// a crash of the plugin); without one they are this process's children, which outlive only a restart of the process.
using var dataPlaneChannel = options.DataPlaneEndpoint is { } dataPlaneEndpoint ? GrpcChannels.Create(dataPlaneEndpoint) : null;
var dataPlane = dataPlaneChannel is null ? null : new SolarCsi.Node.DataPlane.DataPlaneSpawner(dataPlaneChannel, options.DataPlaneEndpoint!.ToString());
if (dataPlane is not null && await dataPlane.ProblemAsync(options.StateDir, TimeSpan.FromSeconds(60), CancellationToken.None) is { } dataPlaneProblem)
{
    log.Fatal("cannot use the data-plane host: {Problem}", dataPlaneProblem);
    return 1;
}
var launcher = dataPlane is null
    ? new DaemonLauncher(runner, await SolarCsi.Node.Nbd.TlsCipherPolicy.EnvironmentAsync(options.StateDir, CancellationToken.None))
    : new DaemonLauncher(dataPlane);
var attachers = AttacherSet.ForThisHost(runner, loops, mounter, launcher, loggerFactory);
var blockDevices = new BlockDevices(runner);
var freezer = new StagedFilesystemFreezer(journal, mounter, runner, loggerFactory.CreateLogger<StagedFilesystemFreezer>());
// The file and nbd pools keep their images on the same filesystem: one ledger, so no byte is promised twice.
Directory.CreateDirectory(layout.Pools);
var imageLedger = new CapacityLedger(layout.Pools, options.FilePoolCapacity);
IMediaPool NewPool(string media, IReadOnlyList<string> requiredTools) => new FilePool(media, VolumeParameters.DefaultPool,
    layout.PoolDir(media, VolumeParameters.DefaultPool), imageLedger, requiredTools, runner, loops,
    freezer.QuiesceAsync, loggerFactory.CreateLogger<FilePool>());
string PoolRoot(string media, string name) => layout.PoolDir(media, name);
var tmpfsPools = options.Pools.TmpfsPools.Select(p => new TmpfsPool(p.Name, PoolRoot(VolumeParameters.TmpfsMedia, p.Name), p.CapacityBytes, mounter, runner,
    loggerFactory.CreateLogger<TmpfsPool>())).ToArray();
var diskPools = options.Pools.DiskPools.Select(p => new DiskPool(p.Name, PoolRoot(VolumeParameters.DiskMedia, p.Name),
    new DiskInventory(p.Paths, p.MinSizeBytes, blockDevices, mounter), mounter, runner, loggerFactory.CreateLogger<DiskPool>())).ToArray();
var lvmPools = options.Pools.LvmPools.Select(p => new LvmPool(p.Name, p.VolumeGroup, p.ThinPool, PoolRoot(VolumeParameters.LvmMedia, p.Name), runner,
    loggerFactory.CreateLogger<LvmPool>())).ToArray();
var pmemPools = options.Pools.PmemPools.Select(p => new PmemPool(p.Name, p.Region, PoolRoot(VolumeParameters.PmemMedia, p.Name), runner,
    loggerFactory.CreateLogger<PmemPool>())).ToArray();
var pools = new PoolSet(options.NodeId,
    [NewPool(VolumeParameters.FileMedia, ["losetup", "blkid", "mount", "umount"]), NewPool(VolumeParameters.NbdMedia, ["nbdkit"]), .. tmpfsPools, .. diskPools, .. lvmPools, .. pmemPools]);
var exports = new NbdExports(layout.Exports, options.NbdServer, launcher, loggerFactory.CreateLogger<NbdExports>());
var groupStore = new GroupSnapshotStore(layout.GroupSnapshots);
var filesystems = new Filesystems(runner);
var sources = new VolumeSources(pools, layout.RemoteClients);
var staging = new VolumeStaging(journal, attachers, sources, mounter,
    new StagedFilesystem(mounter, blockDevices, filesystems, loggerFactory.CreateLogger<StagedFilesystem>()), loggerFactory.CreateLogger<VolumeStaging>());
var publishing = new VolumePublishing(journal, attachers, sources, mounter, loggerFactory.CreateLogger<VolumePublishing>());
var staged = new StagedVolumes(journal, attachers, mounter, blockDevices, filesystems);
var readiness = new Readiness();
// All-in-one: the controller runs in this process, on this CSI endpoint, and hears from this node's agent only.
using var controllerPlane = options.AllInOne
    ? new SolarCsi.Controller.ControllerPlane(new SolarCsi.Controller.ControllerOptions(options.DriverName, options.CsiEndpoint,
        options.ControllerEndpoint!, SolarCsi.Controller.ControllerOptions.DefaultAgentTimeout, StateDir: layout.Controller),
        [options.NodeId])
    : null;
var identity = new PluginIdentity(options.DriverName, [
    .. controllerPlane is null ? [] : SolarCsi.Controller.ControllerPlane.PluginCapabilities,
    PluginIdentity.Service(PluginCapability.Types.Service.Types.Type.VolumeAccessibilityConstraints),
    PluginIdentity.OnlineExpansion(),
]);

var reconciler = new NodeReconciler(journal, staging, inFlight, pools, mounter, loops, attachers, sources, loggerFactory.CreateLogger<NodeReconciler>());
var csi = GrpcServer.Build(options.CsiEndpoint, log, services =>
{
    services.AddSingleton(identity).AddSingleton(readiness).AddSingleton(staging).AddSingleton(publishing).AddSingleton(staged)
        .AddSingleton(inFlight).AddSingleton(options).AddSingleton(exports)
        .AddSingleton(new PathRules(options.AllowedRoots));
    controllerPlane?.AddServices(services);
}, app =>
{
    app.MapGrpcService<IdentityService>();
    app.MapGrpcService<NodeService>();
    if (controllerPlane is not null) SolarCsi.Controller.ControllerPlane.MapServices(app);
});
var registry = controllerPlane?.BuildRegistry(log);
var agent = GrpcServer.Build(options.AgentEndpoint, log, services =>
{
    services.AddSingleton(pools).AddSingleton(inFlight).AddSingleton(options).AddSingleton(exports).AddHostedService<AgentAnnouncer>()
        .AddSingleton(new FreezeLeases(inFlight, freezer.QuiesceAsync, loggerFactory.CreateLogger<FreezeLeases>()))
        .AddSingleton(groupStore)
        // The one place a medium is named for how its volumes reach other nodes: every medium not listed is local.
        .AddSingleton(new SolarCsi.Node.Serving.ServingSet(new Dictionary<string, SolarCsi.Node.Serving.IVolumeServing>
        {
            [VolumeParameters.NbdMedia] = new SolarCsi.Node.Serving.NbdServing(exports, options),
        }));
    if (options.Certificates is not null && options.ControllerEndpoint is not null) services.AddHostedService<NodeCertificates>();
}, app => app.MapGrpcService<AgentService>(),
    // Only the controller drives a node's storage.
    options.Tls is { } tls ? (tls, id => id == SolarCsi.Core.Hosting.Tls.ClusterTls.ControllerIdentity) : null);

// Pools read their media before the agent announces them, so the first heartbeat carries real capacity. A pool
// whose VG or region is missing stays at zero capacity (creates fail with the reason) instead of stopping the
// node's other media.
foreach (var (pool, initialize) in lvmPools.Select(p => ((IMediaPool)p, (Func<CancellationToken, Task>)p.InitializeAsync))
             .Concat(pmemPools.Select(p => ((IMediaPool)p, (Func<CancellationToken, Task>)p.InitializeAsync))))
{
    try { await initialize(CancellationToken.None); }
    catch (Exception e) { log.Error(e, "{Media} pool {Pool} cannot be used: {Reason}", pool.Media, pool.Name, e.Message); }
}
foreach (var pool in diskPools)
{
    try { await pool.ScanAsync(CancellationToken.None); }
    catch (Exception e) { log.Error(e, "disk pool {Pool} cannot be scanned: {Reason}", pool.Name, e.Message); }
}
HostToolReport.Log(log, pools, attachers);
if (options.NbdServer.PeersFilter is null)
    log.Warning("{Filter} is not installed: NBD exports cannot refuse connections by address; only their TLS-PSK keys keep strangers out",
        SolarCsi.Node.Nbd.NbdServerOptions.PeersFilterFile);

NodeMetrics.Register(SolarCsi.Core.Metrics.PluginMetrics.Current, pools, journal, staged, options.StateDir);
controllerPlane?.RegisterMetrics(SolarCsi.Core.Metrics.PluginMetrics.Current, csi.Services);
var metrics = options.MetricsAddress is { } metricsAddress
    ? SolarCsi.Core.Metrics.MetricsServer.Build(metricsAddress, log, SolarCsi.Core.Metrics.PluginMetrics.Current)
    : null;
if (metrics is not null) await metrics.StartAsync();
if (registry is not null) await registry.StartAsync();
await csi.StartAsync();
await agent.StartAsync();
log.Information("node {NodeId} serving CSI{Controller} on {Csi} and the agent API on {Agent}; NBD attach path: {Attach}; helpers started by {DataPlane}",
    options.NodeId, controllerPlane is null ? "" : " (all-in-one: Controller and GroupController too)", options.CsiEndpoint, options.AgentEndpoint,
    attachers.Nbd.Kind, options.DataPlaneEndpoint?.ToString() ?? "this plugin");
// Every state file is read once now, so what cannot be read is set aside and reported at start, not at first use.
_ = journal.All().Count + exports.All().Count + groupStore.All().Count() +
    pools.All.Sum(p => p.ListVolumes().Count + p.ListSnapshots().Count);
await freezer.ThawAllAsync(CancellationToken.None);
foreach (var pool in tmpfsPools) await pool.RemoveOrphansAsync(CancellationToken.None);
await exports.ReconcileAsync(CancellationToken.None);
await reconciler.RunAsync(CancellationToken.None);
if (controllerPlane is not null) await controllerPlane.WaitWarmAsync(CancellationToken.None);
readiness.MarkReady();
var periodic = new ReconcileLoop(reconciler, exports, options, loggerFactory.CreateLogger<ReconcileLoop>());
await periodic.StartAsync(CancellationToken.None);

await Task.WhenAny(csi.WaitForShutdownAsync(), agent.WaitForShutdownAsync(), registry?.WaitForShutdownAsync() ?? Task.Delay(Timeout.Infinite));
await periodic.StopAsync(CancellationToken.None);
await Task.WhenAll(csi.StopAsync(), agent.StopAsync(), registry?.StopAsync() ?? Task.CompletedTask, metrics?.StopAsync() ?? Task.CompletedTask);
return 0;
