using Grpc.Net.Client;

namespace SolarCsi.Tests.Vm;

/// <summary>
/// A cluster inside the guest: the NativeAOT controller and node plugins as separate processes, talking over unix
/// sockets (registry and agent API, as the local cluster does), each node with its own state directory and NBD port
/// range, all sharing the guest's one kernel — so several nodes can attach one export through the kernel path. The
/// host reaches the controller's and each node's CSI socket through its own virtio-serial port.
/// </summary>
public sealed class GuestCluster : IAsyncDisposable
{
    private const string Root = "/run/cluster";
    /// <summary>As the local cluster's: the controller's warm-up (half of it) is short.</summary>
    private const int AgentTimeoutSeconds = 6;
    private readonly VmTestHost _g;
    private readonly List<GrpcChannel> _channels = [];

    private GuestCluster(VmTestHost g) => _g = g;

    public IReadOnlyList<GuestNode> Nodes { get; private set; } = [];

    /// <summary>One node of the cluster as a test drives it: the controller's CSI service and this node's.</summary>
    public sealed record GuestNode(string NodeId, Csi.V1.Controller.ControllerClient Controller, Csi.V1.Node.NodeClient Node) : IGuestCsi;

    public static async Task<GuestCluster> StartAsync(VmTestHost g, params string[] nodeIds)
    {
        var cluster = new GuestCluster(g);
        try
        {
            await cluster.LaunchAsync(nodeIds);
            return cluster;
        }
        catch
        {
            await cluster.DisposeAsync();
            throw;
        }
    }

    private async Task LaunchAsync(string[] nodeIds)
    {
        var controllerBinary = await GuestBinary.ControllerAsync(_g);
        var nodeBinary = await GuestBinary.NodeAsync(_g);
        await _g.RunOkAsync($"modprobe loop && modprobe nbd nbds_max=8 && mkdir -p {Root}/controller {GuestPlugin.KubeletDir} && " +
            $"setsid -f {Shell.Quote(controllerBinary)} --endpoint unix://{Root}/controller/csi.sock --registry-endpoint unix://{Root}/controller/registry.sock " +
            $"--state-dir {Root}/controller/state --agent-timeout-seconds {AgentTimeoutSeconds} > {Root}/controller.log 2>&1 < /dev/null");
        var controllerStarted = DateTime.UtcNow;
        foreach (var (nodeId, i) in nodeIds.Select((n, i) => (n, i)))
        {
            var dir = $"{Root}/{nodeId}";
            await _g.RunOkAsync($"mkdir -p {dir} && setsid -f {Shell.Quote(nodeBinary)} --endpoint unix://{dir}/csi.sock --node-id {nodeId} " +
                $"--state-dir {dir}/state --agent-endpoint unix://{dir}/agent.sock --controller-endpoint unix://{Root}/controller/registry.sock " +
                $"--allowed-root {GuestPlugin.KubeletDir} --heartbeat-seconds 1 --reconcile-seconds 2 --file-pool-capacity 256Mi " +
                $"--nbd-address 127.0.0.1 --nbd-port-range {10809 + 20 * i}-{10809 + 20 * i + 19} > {Root}/{nodeId}.log 2>&1 < /dev/null");
        }
        var sockets = nodeIds.Select(n => $"{Root}/{n}/csi.sock").Prepend($"{Root}/controller/csi.sock").ToArray();
        await _g.RunOkAsync($"for i in $(seq 300); do ok=1; for s in {string.Join(' ', sockets)}; do [ -S $s ] || ok=0; done; [ $ok = 1 ] && exit 0; sleep 0.1; done; " +
            $"tail -20 {Root}/*.log; exit 1", TimeSpan.FromSeconds(60));
        var controllerChannel = await GuestBridge.OpenAsync(_g, sockets[0]);
        _channels.Add(controllerChannel);
        var controller = new Csi.V1.Controller.ControllerClient(controllerChannel);
        var nodes = new List<GuestNode>();
        foreach (var nodeId in nodeIds)
        {
            var channel = await GuestBridge.OpenAsync(_g, $"{Root}/{nodeId}/csi.sock");
            _channels.Add(channel);
            nodes.Add(new GuestNode(nodeId, controller, new Csi.V1.Node.NodeClient(channel)));
        }
        Nodes = nodes;
        // Every node has announced itself (heartbeat each second) once the controller counts each one's pools.
        var until = DateTime.UtcNow.AddSeconds(60);
        while ((await controller.GetCapacityAsync(new Csi.V1.GetCapacityRequest { Parameters = { ["media"] = "nbd" } }, deadline: GuestVolume.Deadline()))
               .AvailableCapacity < nodeIds.Length * (256L << 20))
        {
            if (DateTime.UtcNow > until) throw new TimeoutException($"the controller did not hear from all of {string.Join(", ", nodeIds)} within 60 s\n{await LogTailAsync()}");
            await Task.Delay(500);
        }
        // Placement waits out the warm-up unless every node it has ever seen is back: here it has seen none before.
        var warm = controllerStarted.AddSeconds(AgentTimeoutSeconds / 2.0 + 1) - DateTime.UtcNow;
        if (warm > TimeSpan.Zero) await Task.Delay(warm);
    }

    public Task<string> LogTailAsync(int lines = 15) => _g.RunOkAsync($"for f in {Root}/*.log; do echo \"== $f\"; tail -{lines} $f; done; true");

    public async ValueTask DisposeAsync()
    {
        foreach (var channel in _channels) channel.Dispose();
        await _g.ShellAsync($"pkill -f '^{Root}|/solar-node --endpoint|/solar-controller --endpoint'; pkill -x socat; sleep 0.5; " +
            $"for m in $(findmnt -rn -o TARGET | grep ^{GuestPlugin.KubeletDir} | sort -r); do umount $m; done; " +
            "for d in /sys/block/nbd*; do [ -e $d/pid ] && nbd-client -d /dev/${d##*/}; done; pkill nbdkit; losetup -D; " +
            $"rm -rf {Root} {GuestPlugin.KubeletDir} /run/socat.log");
    }
}
