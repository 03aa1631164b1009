using System.Diagnostics;
using Csi.V1;
using Grpc.Core;
using Grpc.Net.Client;
using Microsoft.Extensions.Logging.Abstractions;
using SolarCsi.Controller;
using SolarCsi.Core.Errors;
using SolarCsi.Core.Hosting;
using SolarCsi.Core.Ids;
using SolarCsi.Node;
using SolarCsi.Node.Devices;
using SolarCsi.Node.Mounts;
using SolarCsi.Node.Processes;

namespace SolarCsi.Local;

/// <summary>
/// The single-machine deployment: one controller and N node plugins as real processes under one directory, the way a
/// CO would see them: CSI on unix sockets, the control plane (registry, agent API) over mutual TLS on loopback TCP as
/// in a cluster — the controller holds the CA and each node gets its certificate for the bootstrap token, so the
/// secure path is the one every test and demo runs. Disposing it stops the processes and removes every mount and loop
/// device left under its directory, even after a failure.
/// </summary>
public sealed class LocalCluster : IAsyncDisposable
{
    /// <summary>NBD export ports per node: more than the default attach limit (128), so a node can export a full
    /// node's worth of volumes plus ports still being released.</summary>
    public const int PortsPerNode = 200;
    /// <summary>How long the controller keeps a silent agent as live (short, so tests see a stopped node soon).</summary>
    public const int AgentTimeoutSeconds = 6;

    private readonly List<PluginProcess> _processes = [];
    private readonly List<GrpcChannel> _channels = [];

    /// <summary>A cluster not started yet (its command lines can be looked at); <see cref="StartAsync"/> starts one.</summary>
    internal LocalCluster(string root, string driverName)
    {
        Root = root;
        DriverName = driverName;
        KubeletDir = Path.Combine(root, "kubelet");
        Directory.CreateDirectory(KubeletDir);
    }

    public string Root { get; }
    public string DriverName { get; }
    /// <summary>Stands in for /var/lib/kubelet: staging and target paths must live under it.</summary>
    public string KubeletDir { get; }
    public PluginEndpoints Controller { get; private set; } = null!;
    /// <summary>The cluster CA (ca.crt, ca.key): the controller issues node certificates from it.</summary>
    public string CaDir => Path.Combine(Root, "tls", "ca");
    /// <summary>The bootstrap token nodes present for their first certificate.</summary>
    public string BootstrapTokenFile => Path.Combine(Root, "tls", "bootstrap-token");
    /// <summary>The certificate the controller issued itself (its --state-dir/tls): a test that speaks to an agent as the controller does uses it.</summary>
    public string ControllerTlsDir => Path.Combine(Root, "controller", "state", "tls");
    public IReadOnlyList<NodePlugin> Nodes { get; private set; } = [];

    /// <summary>
    /// Starts the plugins. <paramref name="registryEndpoint"/> defaults to a unix socket under <paramref name="root"/>;
    /// pass a tcp:// address for agents that do not share this machine's filesystem (a storage host in a container).
    /// </summary>
    /// <param name="poolsConfig">per node id, the JSON of its --pools-config (local media pools); nodes not named get none.</param>
    /// <param name="nodeArgs">per node id, extra flags for its node plugin (e.g. --max-volumes).</param>
    /// <param name="nbdFirstPort">the first NBD export port of the first node; each node gets the next <see cref="PortsPerNode"/>. Two clusters
    /// on one machine (a bench beside a test run) need ranges apart: an export picks a port that is free when it looks.</param>
    public static async Task<LocalCluster> StartAsync(string root, IReadOnlyList<string> nodeIds, Action<string>? progress = null,
        string driverName = PluginIdentity.DefaultDriverName, string? registryEndpoint = null,
        IReadOnlyDictionary<string, string>? poolsConfig = null, IReadOnlyDictionary<string, IReadOnlyList<string>>? nodeArgs = null,
        CancellationToken ct = default, int nbdFirstPort = 21000, IReadOnlyList<string>? controllerArgs = null)
    {
        var cluster = new LocalCluster(root, driverName);
        try
        {
            await cluster.LaunchAsync(nodeIds, progress ?? (_ => { }), registryEndpoint, poolsConfig ?? new Dictionary<string, string>(),
                nodeArgs ?? new Dictionary<string, IReadOnlyList<string>>(), nbdFirstPort, controllerArgs ?? [], ct);
            return cluster;
        }
        catch
        {
            await cluster.DisposeAsync();
            throw;
        }
    }

    private async Task LaunchAsync(IReadOnlyList<string> nodeIds, Action<string> progress, string? registryEndpoint,
        IReadOnlyDictionary<string, string> poolsConfig, IReadOnlyDictionary<string, IReadOnlyList<string>> nodeArgs, int nbdFirstPort,
        IReadOnlyList<string> controllerArgs, CancellationToken ct)
    {
        var bin = BinaryLocator.Find();
        var controllerDir = Path.Combine(Root, "controller");
        // A caller may have made the CA already (to issue certificates of its own from it).
        if (!File.Exists(Path.Combine(CaDir, SolarCsi.Core.Hosting.Tls.ClusterTls.CaFile))) SolarCsi.Core.Hosting.Tls.CertificateAuthority.Create(CaDir, TimeSpan.FromDays(30));
        await SolarCsi.Core.Storage.AtomicFile.WriteAsync(BootstrapTokenFile, System.Text.Encoding.ASCII.GetBytes(
            Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32)) + "\n"), ct);
        var registry = registryEndpoint ?? $"tcp://127.0.0.1:{FreePort()}";
        RegistryEndpoint = registry;
        var csi = $"unix://{controllerDir}/csi.sock";
        progress($"starting controller ({csi})");
        var controllerMetrics = $"127.0.0.1:{FreePort()}";
        Start("controller", bin.Controller, [.. ControllerArguments(csi, registry, controllerMetrics, Path.Combine(controllerDir, "state")), .. controllerArgs]);
        Controller = Connect(csi) with { MetricsUrl = $"http://{controllerMetrics}/metrics" };

        var nodes = new List<NodePlugin>();
        foreach (var (nodeId, index) in nodeIds.Select((n, i) => (n, i)))
        {
            var firstPort = nbdFirstPort + PortsPerNode * index;
            var dir = Path.Combine(Root, nodeId);
            var nodeCsi = $"unix://{dir}/csi.sock";
            progress($"starting node plugin {nodeId} ({nodeCsi})");
            List<string> extra = [.. nodeArgs.GetValueOrDefault(nodeId) ?? []];
            if (poolsConfig.TryGetValue(nodeId, out var json))
            {
                Directory.CreateDirectory(dir);
                var file = Path.Combine(dir, "pools.json");
                await File.WriteAllTextAsync(file, json, ct);
                extra.AddRange(CommandLine.Format(NodeOptions.Flags, [("pools-config", file)]));
            }
            var nodeMetrics = $"127.0.0.1:{FreePort()}";
            var agent = $"tcp://127.0.0.1:{FreePort()}";
            // The caller's flags last: a later value of a flag wins, so they can override the defaults here.
            Start(nodeId, bin.Node, [.. NodeArguments(nodeId, dir, nodeCsi, agent, registry, nodeMetrics, firstPort), .. extra]);
            var endpoints = Connect(nodeCsi);
            nodes.Add(new NodePlugin(nodeId, endpoints.Identity, new Csi.V1.Node.NodeClient(endpoints.Channel), dir, $"http://{nodeMetrics}/metrics")
                { AgentEndpoint = agent });
        }
        Nodes = nodes;

        await WaitReadyAsync(Controller.Identity, "controller", ct);
        foreach (var node in Nodes) await WaitReadyAsync(node.Identity, node.NodeId, ct);
        foreach (var node in Nodes) await WaitAnnouncedAsync(node.NodeId, ct);
        progress($"controller sees {Nodes.Count} node agent(s): {string.Join(", ", Nodes.Select(n => n.NodeId))}");
    }

    private readonly Dictionary<string, (string Program, IReadOnlyList<string> Args)> _commands = new();

    /// <summary>The controller's command line, made from the flags <see cref="ControllerOptions"/> parses.</summary>
    public IReadOnlyList<string> ControllerArguments(string csi, string registry, string metrics, string stateDir) =>
        CommandLine.Format(ControllerOptions.Flags, [
            ("endpoint", csi), ("registry-endpoint", registry), ("driver-name", DriverName),
            ("agent-timeout-seconds", AgentTimeoutSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture)),
            ("metrics-address", metrics), ("state-dir", stateDir), ("ca-dir", CaDir), ("bootstrap-token-file", BootstrapTokenFile),
        ]);

    /// <summary>The --state-dir a node plugin of this cluster runs with, under its directory.</summary>
    public static string StateDirOf(string nodeDirectory) => Path.Combine(nodeDirectory, "state");

    /// <summary>A node plugin's command line, made from the flags <see cref="NodeOptions"/> parses.</summary>
    public IReadOnlyList<string> NodeArguments(string nodeId, string dir, string csi, string agent, string registry, string metrics, int firstNbdPort) =>
        CommandLine.Format(NodeOptions.Flags, [
            ("metrics-address", metrics), ("endpoint", csi), ("node-id", nodeId), ("driver-name", DriverName),
            ("state-dir", StateDirOf(dir)), ("agent-endpoint", agent), ("controller-endpoint", registry), ("allowed-root", KubeletDir),
            ("tls-dir", Path.Combine(dir, "tls")), ("ca-file", Path.Combine(CaDir, SolarCsi.Core.Hosting.Tls.ClusterTls.CaFile)),
            ("bootstrap-token-file", BootstrapTokenFile), ("heartbeat-seconds", "1"), ("file-pool-capacity", "16Gi"), ("reconcile-seconds", "2"),
            ("nbd-address", "127.0.0.1"), ("nbd-port-range", $"{firstNbdPort}-{firstNbdPort + PortsPerNode - 1}"),
        ]);

    private void Start(string name, string program, IReadOnlyList<string> args, IReadOnlyDictionary<string, string>? environment = null)
    {
        var logFile = Path.Combine(Root, "logs", name + ".log");
        Directory.CreateDirectory(Path.GetDirectoryName(logFile)!);
        _commands[name] = (program, args);
        _processes.Add(PluginProcess.Start(name, program, args, logFile, environment));
    }

    /// <summary>
    /// Stops a node plugin (or kills it, as a crash) and starts it again on the same state, optionally with extra
    /// environment (e.g. armed fault points).
    /// </summary>
    public async Task RestartNodeAsync(string nodeId, bool crash = false, IReadOnlyDictionary<string, string>? environment = null,
        CancellationToken ct = default)
    {
        // A node stopped with StopNodeAsync is simply started again.
        if (_processes.SingleOrDefault(p => p.Name == nodeId) is { } process)
        {
            await process.StopAsync(graceful: !crash);
            _processes.Remove(process);
        }
        var (program, args) = _commands[nodeId];
        Start(nodeId, program, args, environment);
        await WaitReadyAsync(Nodes.Single(n => n.NodeId == nodeId).Identity, nodeId, ct);
    }

    /// <summary>
    /// Stops a node plugin and leaves it down (what an operator sees when a plugin is stuck or crash-looping);
    /// <see cref="RestartNodeAsync"/> brings it back.
    /// </summary>
    public async Task StopNodeAsync(string nodeId)
    {
        var process = _processes.Single(p => p.Name == nodeId);
        await process.StopAsync(graceful: true);
        _processes.Remove(process);
    }

    /// <summary>Stops the controller (killed, as a crash, by default) and starts it again on the same state; returns once it is ready.</summary>
    public async Task RestartControllerAsync(bool crash = true, CancellationToken ct = default)
    {
        var process = _processes.Single(p => p.Name == "controller");
        await process.StopAsync(graceful: !crash);
        _processes.Remove(process);
        var (program, args) = _commands["controller"];
        Start("controller", program, args);
        await WaitReadyAsync(Controller.Identity, "controller", ct);
    }

    /// <summary>The pid of a running plugin ("controller" or a node id), for a test that signals it (SIGSTOP: a silent agent).</summary>
    public int ProcessIdOf(string name) => _processes.Single(p => p.Name == name).Id;

    /// <summary>Waits for a node plugin that is expected to die by itself (a fault point) to be gone.</summary>
    public async Task WaitForExitAsync(string nodeId, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (!_processes.Single(p => p.Name == nodeId).HasExited)
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"{nodeId} is still running");
            await Task.Delay(50);
        }
    }

    /// <summary>
    /// A channel to <paramref name="nodeId"/>'s agent API as the controller reaches it (mutual TLS, the controller's
    /// certificate), for a test that asks an agent directly.
    /// </summary>
    public GrpcChannel AgentChannel(string nodeId) =>
        GrpcChannels.Create(GrpcEndpoint.Parse(Nodes.Single(n => n.NodeId == nodeId).AgentEndpoint),
            (SolarCsi.Core.Hosting.Tls.ClusterTls.Load(ControllerTlsDir), SolarCsi.Core.Hosting.Tls.ClusterTls.NodeIdentity(nodeId)));

    /// <summary>
    /// The NBD connection publish_context describes, with the key in the open as the storage host keeps it (its
    /// export's 0600 key file): for a test or bench that connects to an export itself, since publish_context carries
    /// the key only sealed to the consumer's certificate, or not at all on the storage host.
    /// </summary>
    public SolarCsi.Node.Nbd.NbdConnection ConnectionOf(string volumeId, IEnumerable<KeyValuePair<string, string>> publishContext)
    {
        var context = publishContext.ToDictionary(kv => kv.Key, kv => kv.Value);
        var identity = context.GetValueOrDefault(SolarCsi.Node.Nbd.NbdConnection.IdentityKey) ?? "";
        return SolarCsi.Node.Nbd.NbdConnection.FromContext(SolarCsi.Node.Nbd.NbdConnection.Unsealed(context, _ => NbdKeyOf(volumeId, identity), () => NbdKeyOf(volumeId, identity)));
    }

    /// <summary>The directory of a volume's NBD export on its storage host (keys.psk, peers, export.json).</summary>
    public string ExportDirOf(string volumeId) =>
        Path.Combine(new NodeStateLayout(StateDirOf(Path.Combine(Root, StorageId.ParseVolume(volumeId).Node))).Exports, volumeId);

    /// <summary>The key <paramref name="nodeId"/> is admitted to a volume's export with, as its storage host keeps it.</summary>
    public string NbdKeyOf(string volumeId, string nodeId) =>
        File.ReadAllLines(Path.Combine(ExportDirOf(volumeId), "keys.psk")).Select(l => l.Split(':', 2)).Single(p => p[0] == nodeId)[1];

    /// <summary>A channel to the registry as <paramref name="nodeId"/> reaches it (mutual TLS, the certificate the node was issued).</summary>
    public GrpcChannel RegistryChannel(string nodeId) =>
        GrpcChannels.Create(GrpcEndpoint.Parse(RegistryEndpoint),
            (SolarCsi.Core.Hosting.Tls.ClusterTls.Load(Path.Combine(Root, nodeId, "tls"), Path.Combine(CaDir, SolarCsi.Core.Hosting.Tls.ClusterTls.CaFile)), SolarCsi.Core.Hosting.Tls.ClusterTls.ControllerIdentity));

    private PluginEndpoints Connect(string endpoint)
    {
        var channel = GrpcChannels.Create(GrpcEndpoint.Parse(endpoint));
        _channels.Add(channel);
        return new PluginEndpoints(channel, new Identity.IdentityClient(channel), new Csi.V1.Controller.ControllerClient(channel));
    }

    private async Task WaitReadyAsync(Identity.IdentityClient identity, string what, CancellationToken ct)
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (true)
        {
            ThrowIfExited();
            try
            {
                var probe = await identity.ProbeAsync(new ProbeRequest(), deadline: DateTime.UtcNow.AddSeconds(5), cancellationToken: ct);
                if (probe.Ready ?? true) return;
            }
            catch (RpcException) when (DateTime.UtcNow < deadline) { }
            if (DateTime.UtcNow >= deadline) throw new TimeoutException($"{what} did not become ready; see {Root}/logs");
            await Task.Delay(100, ct);
        }
    }

    public string RegistryEndpoint { get; private set; } = "";

    /// <summary>Waits until the controller has heard from <paramref name="nodeId"/> (any agent, inside or outside this cluster).</summary>
    public Task WaitForAgentAsync(string nodeId, CancellationToken ct = default) => WaitAnnouncedAsync(nodeId, ct);

    private async Task WaitAnnouncedAsync(string nodeId, CancellationToken ct)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        var topology = new Topology();
        topology.Segments.Add(NodeTopology.Of(nodeId));
        while (true)
        {
            ThrowIfExited();
            try
            {
                // Asked live: UNAVAILABLE while the controller cannot reach the node yet (it is still starting), as a CO sees it.
                var capacity = await Controller.Controller.GetCapacityAsync(new GetCapacityRequest { AccessibleTopology = topology }, cancellationToken: ct);
                if (capacity.AvailableCapacity > 0) return;
            }
            catch (RpcException e) when (e.StatusCode == StatusCode.Unavailable && DateTime.UtcNow < deadline) { }
            if (DateTime.UtcNow >= deadline) throw new TimeoutException($"node {nodeId} never announced itself to the controller");
            await Task.Delay(100, ct);
        }
    }

    private void ThrowIfExited()
    {
        if (_processes.FirstOrDefault(p => p.HasExited) is { } dead)
            throw new InvalidOperationException($"{dead.Name} exited with code {dead.ExitCode}:\n{dead.Tail()}");
    }

    /// <summary>Mounts, loop devices and NBD helper processes under this cluster's directory that are still there.</summary>
    public Task<Leftovers> FindLeftoversAsync(CancellationToken ct = default) => FindLeftoversUnderAsync(Root, ct);

    public static async Task<Leftovers> FindLeftoversUnderAsync(string root, CancellationToken ct = default)
    {
        var mounts = new MountTable(MountInfoParser.Parse(await File.ReadAllTextAsync("/proc/self/mountinfo", ct))).Under(root);
        var loops = (await Loops.ListAsync(ct)).Where(l => l.BackingFile.StartsWith(root + "/", StringComparison.Ordinal)).Select(l => l.Name).ToArray();
        return new Leftovers(mounts, loops, HelperProcessesUnder(root));
    }

    /// <summary>nbdkit and nbdfuse processes working on files under this cluster's directory.</summary>
    public IReadOnlyList<int> HelperProcesses() => HelperProcessesUnder(Root);

    public static IReadOnlyList<int> HelperProcessesUnder(string root) =>
        Directory.EnumerateDirectories("/proc")
            .Select(d => int.TryParse(Path.GetFileName(d), out var pid) ? pid : 0)
            .Where(pid => pid > 0 && Pid.CommandLine(pid) is { Count: > 0 } argv &&
                          Path.GetFileName(argv[0]) is "nbdkit" or "nbdfuse" &&
                          argv.Any(a => a.Contains(root + "/", StringComparison.Ordinal)))
            .ToArray();

    /// <summary>A loopback TCP port nobody listens on, reserved for this process (<see cref="LoopbackPorts"/>).</summary>
    public static int FreePort() => LoopbackPorts.Reserve();

    private static readonly IProcessRunner Runner = new ProcessRunner(NullLogger<ProcessRunner>.Instance);
    private static readonly LoopDevices Loops = new(Runner);

    private static async Task RunQuietAsync(string program, IReadOnlyList<string> args)
    {
        try { await Runner.RunAsync(program, args, CancellationToken.None, TimeSpan.FromSeconds(30)); }
        catch (Exception e) when (e is CommandFailedException or TimeoutException) { Console.Error.WriteLine(e.Message); }
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var channel in _channels) channel.Dispose();
        await Task.WhenAll(_processes.Select(p => p.StopAsync()));
        await RemoveLeftoversAsync(Root);
    }

    /// <summary>
    /// Whatever a failed test left under <paramref name="root"/>: mounts (deepest first), then loop devices, then
    /// nbdkit/nbdfuse processes. For any harness that ran plugins there, not only a LocalCluster.
    /// </summary>
    public static async Task RemoveLeftoversAsync(string root)
    {
        var leftovers = await FindLeftoversUnderAsync(root);
        foreach (var mount in leftovers.Mounts.OrderByDescending(m => m.Length))
            await RunQuietAsync("umount", ["-l", mount]);
        foreach (var loop in leftovers.LoopDevices)
            await RunQuietAsync("losetup", ["--detach", loop]);
        foreach (var pid in leftovers.Processes)
            await Pid.StopAsync(pid, kill: true, TimeSpan.FromSeconds(5), CancellationToken.None);
    }
}

public sealed record PluginEndpoints(GrpcChannel Channel, Identity.IdentityClient Identity, Csi.V1.Controller.ControllerClient Controller)
{
    /// <summary>The plugin's Prometheus endpoint (http://127.0.0.1:PORT/metrics).</summary>
    public string MetricsUrl { get; init; } = "";
}

public sealed record NodePlugin(string NodeId, Identity.IdentityClient Identity, Csi.V1.Node.NodeClient Node, string Directory, string MetricsUrl)
{
    /// <summary>Its agent API (tcp://127.0.0.1:PORT, mutual TLS; see <see cref="LocalCluster.AgentChannel"/>).</summary>
    public string AgentEndpoint { get; init; } = "";

    /// <summary>Where its --state-dir keeps what (journal, pools, exports), as the plugin itself lays it out.</summary>
    public NodeStateLayout State => new(LocalCluster.StateDirOf(Directory));
}

public sealed record Leftovers(IReadOnlyList<string> Mounts, IReadOnlyList<string> LoopDevices, IReadOnlyList<int> Processes)
{
    public bool IsEmpty => Mounts.Count == 0 && LoopDevices.Count == 0 && Processes.Count == 0;
    public override string ToString() =>
        $"mounts [{string.Join(", ", Mounts)}], loop devices [{string.Join(", ", LoopDevices)}], processes [{string.Join(", ", Processes)}]";
}
