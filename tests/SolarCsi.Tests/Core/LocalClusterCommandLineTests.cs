using SolarCsi.Controller;
using SolarCsi.Core.Hosting;
using SolarCsi.Core.Hosting.Tls;
using SolarCsi.Local;
using SolarCsi.Node;

namespace SolarCsi.Tests.Core;

/// <summary>
/// LocalCluster (every sanity test, the demo, the benches) starts the plugins with command lines made from the flags
/// the plugins parse, and those command lines mean to the plugins what the cluster thinks they mean.
/// </summary>
public sealed class LocalClusterCommandLineTests
{
    [Fact]
    public void TheNodesCommandLineParsesIntoTheOptionsTheClusterMeans()
    {
        using var dir = new TempDir();
        var cluster = new LocalCluster(dir.Path, "solar.csi.dev");
        var nodeDir = Path.Combine(dir.Path, "node-a");

        var args = cluster.NodeArguments("node-a", nodeDir, $"unix://{nodeDir}/csi.sock", "tcp://127.0.0.1:23001", "tcp://127.0.0.1:23002",
            "127.0.0.1:23003", 21000);
        var options = NodeOptions.Parse(new CommandLine(args, NodeOptions.Flags));

        Assert.Equal(("node-a", "solar.csi.dev", Path.Combine(nodeDir, "state")), (options.NodeId, options.DriverName, options.StateDir));
        Assert.Equal([cluster.KubeletDir], options.AllowedRoots);
        Assert.Equal("tcp://127.0.0.1:23002", options.ControllerEndpoint?.ToString());
        Assert.Equal((21000, 21000 + LocalCluster.PortsPerNode - 1), (options.NbdServer.FirstPort, options.NbdServer.LastPort));
        Assert.Equal(new NodeCertificateSource(Path.Combine(nodeDir, "tls"), Path.Combine(cluster.CaDir, ClusterTls.CaFile), cluster.BootstrapTokenFile),
            options.Certificates);
    }

    [Fact]
    public void TheControllersCommandLineParsesIntoTheOptionsTheClusterMeans()
    {
        using var dir = new TempDir();
        var cluster = new LocalCluster(dir.Path, "solar.csi.dev");
        var state = Path.Combine(dir.Path, "controller", "state");

        var args = cluster.ControllerArguments($"unix://{dir.Path}/controller.sock", "tcp://127.0.0.1:23002", "127.0.0.1:23004", state);
        var options = ControllerOptions.Parse(new CommandLine(args, ControllerOptions.Flags));

        Assert.Equal(("solar.csi.dev", state, TimeSpan.FromSeconds(LocalCluster.AgentTimeoutSeconds)), (options.DriverName, options.StateDir, options.AgentTimeout));
        Assert.Equal("tcp://127.0.0.1:23002", options.RegistryEndpoint.ToString());
        Assert.Equal((cluster.CaDir, cluster.BootstrapTokenFile), (options.Issuer?.CaDir, options.Issuer?.TokenFile));
    }

    [Fact]
    public void AFlagTheProgramDoesNotParseIsRefusedWhereTheCommandLineIsMade()
    {
        var e = Assert.Throws<ArgumentException>(() => CommandLine.Format(NodeOptions.Flags, [("node-id", "a"), ("registry-endpoint", "tcp://127.0.0.1:1")]));
        Assert.Contains("--registry-endpoint", e.Message);
        Assert.Equal(["--node-id", "a"], CommandLine.Format(NodeOptions.Flags, [("node-id", "a")]));
    }
}

/// <summary>The cluster's listener ports come from below the kernel's ephemeral range and are not handed out twice.</summary>
public sealed class LoopbackPortsTests
{
    [Fact]
    public void PortsAreOutsideTheEphemeralRangeDistinctAndBindable()
    {
        var ephemeral = File.ReadAllText("/proc/sys/net/ipv4/ip_local_port_range").Split((char[])['\t', ' '], StringSplitOptions.RemoveEmptyEntries)
            .Select(int.Parse).ToArray();
        var ports = Enumerable.Range(0, 20).Select(_ => LoopbackPorts.Reserve()).ToArray();

        Assert.Equal(ports.Length, ports.Distinct().Count());
        Assert.All(ports, p => Assert.True(p < ephemeral[0] || p > ephemeral[1], $"{p} is in the ephemeral range {ephemeral[0]}-{ephemeral[1]}"));
        foreach (var port in ports)
        {
            using var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, port);
            listener.Start();
        }
    }
}
