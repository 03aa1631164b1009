using Csi.V1;
using Docker.DotNet.Models;
using DotNet.Testcontainers.Builders;
using DotNet.Testcontainers.Containers;
using Grpc.Net.Client;
using Microsoft.Extensions.Logging.Abstractions;
using SolarCsi.Core.Hosting;
using SolarCsi.Core.Hosting.Tls;
using SolarCsi.Local;
using SolarCsi.Node.Processes;

namespace SolarCsi.SanityTests;

/// <summary>
/// A node as a DaemonSet runs it: the node plugin in one container and its data-plane host (<c>solar-node
/// dataplane</c>) in another, both with the host's pid namespace and network, /dev, and the node's directories
/// (state, kubelet, CSI socket) bind-mounted with shared propagation — kubelet's Bidirectional — so mounts made in
/// either container reach this machine and the other container. Everything lives under one temporary directory
/// made a shared mount of its own; disposing removes the containers, then whatever they left.
/// </summary>
internal sealed class ContainerizedNode : IAsyncDisposable
{
    private static readonly IProcessRunner Runner = new ProcessRunner(NullLogger<ProcessRunner>.Instance);
    private readonly TestDockerEngine _engine;
    private readonly List<IContainer> _containers = [];
    private GrpcChannel? _channel;

    private ContainerizedNode(TestDockerEngine engine, string nodeId, string root)
    {
        _engine = engine;
        NodeId = nodeId;
        Root = root;
    }

    public string NodeId { get; }
    public string Root { get; }
    public string StateDir => Path.Combine(Root, "state");
    public string KubeletDir => Path.Combine(Root, "kubelet");
    private string CsiSocket => Path.Combine(Root, "csi", "csi.sock");
    public NodePlugin Plugin { get; private set; } = null!;
    public IContainer PluginContainer => _containers[1];

    public static async Task<ContainerizedNode> StartAsync(RemoteStorageHostFixture fx, string nodeId, int agentPort, string nbdPorts)
    {
        var node = new ContainerizedNode(fx.Engine, nodeId, Directory.CreateTempSubdirectory("solar-node-container-").FullName);
        try
        {
            await node.LaunchAsync(fx, agentPort, nbdPorts);
            return node;
        }
        catch
        {
            await node.DisposeAsync();
            throw;
        }
    }

    private async Task LaunchAsync(RemoteStorageHostFixture fx, int agentPort, string nbdPorts)
    {
        foreach (var dir in new[] { StateDir, KubeletDir, Path.GetDirectoryName(CsiSocket)! }) Directory.CreateDirectory(dir);
        await Runner.RunAsync("mount", ["--bind", Root, Root], CancellationToken.None);
        await Runner.RunAsync("mount", ["--make-shared", Root], CancellationToken.None);
        var tls = Path.Combine(Root, "tls");
        CertificateAuthority.Issue(fx.CertificateAuthorityDir, ClusterTls.NodeIdentity(NodeId), tls, TimeSpan.FromDays(1));
        var dataPlaneSocket = $"unix://{StateDir}/dataplane.sock";

        _containers.Add(Build(["dataplane", "--endpoint", dataPlaneSocket, "--state-dir", StateDir], "data-plane host serving"));
        _containers.Add(Build([
            "--endpoint", "unix://" + CsiSocket, "--node-id", NodeId, "--state-dir", StateDir, "--allowed-root", KubeletDir,
            "--agent-endpoint", $"tcp://127.0.0.1:{agentPort}", "--controller-endpoint", $"tcp://127.0.0.1:{fx.RegistryPort}",
            "--heartbeat-seconds", "1", "--file-pool-capacity", "1Ti", "--nbd-address", "127.0.0.1", "--nbd-port-range", nbdPorts,
            "--tls-dir", tls, "--dataplane-endpoint", dataPlaneSocket, "--reconcile-seconds", "2",
        ], "serving CSI"));
        foreach (var container in _containers)
        {
            using var start = new CancellationTokenSource(TimeSpan.FromSeconds(90));
            await container.StartAsync(start.Token);
        }
        _channel = GrpcChannels.Create(GrpcEndpoint.Parse("unix://" + CsiSocket));
        Plugin = new NodePlugin(NodeId, new Csi.V1.Identity.IdentityClient(_channel), new Csi.V1.Node.NodeClient(_channel), Root, "");
        await fx.Cluster.WaitForAgentAsync(NodeId);
    }

    private IContainer Build(IReadOnlyList<string> command, string readyLine) =>
        new ContainerBuilder(RemoteStorageHostFixture.Image)
            .WithDockerEndpoint(_engine.Endpoint)
            .WithName($"solar-{NodeId}-{(command[0] == "dataplane" ? "dataplane" : "plugin")}-{Guid.NewGuid():N}")
            .WithCreateParameterModifier(p =>
            {
                var host = p.HostConfig!;
                host.NetworkMode = "host";
                host.PidMode = "host";
                // What a privileged DaemonSet pod gets, minus what this machine's own root lacks (CAP_SYS_RESOURCE):
                // --privileged would ask runc for every capability and fail here.
                host.CapAdd = ["ALL"];
                host.CapDrop = ["SYS_RESOURCE"];
                host.SecurityOpt = ["seccomp=unconfined", "apparmor=unconfined"];
                host.DeviceCgroupRules = ["b *:* rwm", "c *:* rwm"];
                host.Binds = ["/dev:/dev"];
                host.Mounts = [new Mount { Type = "bind", Source = Root, Target = Root, BindOptions = new BindOptions { Propagation = "rshared" } }];
            })
            .WithCommand([.. command])
            .WithWaitStrategy(Wait.ForUnixContainer().UntilMessageIsLogged(readyLine))
            .Build();

    /// <summary>
    /// Restarts the plugin's container — <c>docker restart</c> (SIGTERM, as a DaemonSet update does) or, with
    /// <paramref name="crash"/>, <c>docker kill</c> then <c>docker start</c> (an OOM kill or a crash) — and waits until
    /// the new plugin says it is ready. Returns how long the plugin was away.
    /// </summary>
    public async Task<TimeSpan> RestartPluginContainerAsync(bool crash)
    {
        var started = DateTime.UtcNow;
        var name = PluginContainer.Name.TrimStart('/');
        string[][] commands = crash ? [["kill", "--signal", "KILL", name], ["start", name]] : [["restart", "--time", "10", name]];
        foreach (var command in commands)
            await Runner.RunAsync("docker", ["-H", _engine.Endpoint, .. command], CancellationToken.None, TimeSpan.FromSeconds(60));
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (true)
        {
            try
            {
                if ((await Plugin.Identity.ProbeAsync(new ProbeRequest(), deadline: DateTime.UtcNow.AddSeconds(5))).Ready == true) break;
            }
            catch (Grpc.Core.RpcException) when (DateTime.UtcNow < deadline)
            {
            }
            if (DateTime.UtcNow >= deadline) throw new TimeoutException("the restarted node plugin did not become ready within 60 s");
            await Task.Delay(100);
        }
        return DateTime.UtcNow - started;
    }

    /// <summary><c>docker restart</c> of the data-plane host's container: every helper it started ends with it.</summary>
    public async Task RestartDataPlaneContainerAsync()
    {
        await Runner.RunAsync("docker", ["-H", _engine.Endpoint, "restart", "--time", "10", _containers[0].Name.TrimStart('/')], CancellationToken.None,
            TimeSpan.FromSeconds(60));
    }

    /// <summary>The node's helpers (nbdkit, nbdfuse) still running: their command lines name this node's directory.</summary>
    public IReadOnlyList<int> Helpers() => LocalCluster.HelperProcessesUnder(Root);

    public async ValueTask DisposeAsync()
    {
        _channel?.Dispose();
        var logs = new List<string>();
        // The plugin first, then the data-plane host: with it go the helpers it started.
        foreach (var container in Enumerable.Reverse(_containers))
        {
            try
            {
                var (stdout, stderr) = await container.GetLogsAsync();
                logs.Add($"== {container.Name}\n{stdout}{stderr}");
            }
            catch (Exception e) { logs.Add($"== {container.Name}: no logs ({e.Message})"); }
            await container.DisposeAsync();
        }
        if (Environment.GetEnvironmentVariable("SOLAR_KEEP_LOGS") == "1")
            await File.WriteAllTextAsync(Path.Combine(Path.GetTempPath(), $"solar-{NodeId}-containers.log"), string.Join('\n', logs));
        foreach (var pid in Helpers()) await Pid.StopAsync(pid, kill: true, TimeSpan.FromSeconds(5), CancellationToken.None);
        await LocalCluster.RemoveLeftoversAsync(Root);
        await Runner.RunAsync("umount", ["-l", Root], CancellationToken.None, TimeSpan.FromSeconds(30), okExitCodes: [0, 32]);
        Directory.Delete(Root, recursive: true);
        // This node offers the most NBD space while it lives; the fixture's other tests expect their volumes on the
        // storage host, so they wait until the controller has stopped counting this node as live.
        await Task.Delay(TimeSpan.FromSeconds(LocalCluster.AgentTimeoutSeconds + 1));
    }
}
