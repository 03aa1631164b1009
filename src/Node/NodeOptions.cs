using SolarCsi.Core.Hosting;

namespace SolarCsi.Node;

public sealed record NodeOptions(
    string NodeId,
    string DriverName,
    string StateDir,
    GrpcEndpoint CsiEndpoint,
    GrpcEndpoint AgentEndpoint,
    GrpcEndpoint? ControllerEndpoint,
    IReadOnlyList<string> AllowedRoots,
    int MaxVolumes,
    long? FilePoolCapacity,
    TimeSpan HeartbeatInterval,
    Nbd.NbdServerOptions NbdServer,
    TimeSpan ReconcileInterval,
    Pools.PoolConfig Pools,
    System.Net.IPEndPoint? MetricsAddress,
    bool AllInOne = false,
    SolarCsi.Core.Hosting.Tls.ClusterTls? Tls = null,
    GrpcEndpoint? DataPlaneEndpoint = null,
    NodeCertificateSource? Certificates = null)
{
    public const string NodeMode = "node";
    public const string AllInOneMode = "all-in-one";

    public Dictionary<string, string> Topology => SolarCsi.Core.Ids.NodeTopology.Of(NodeId);

    public static readonly IReadOnlyDictionary<string, string> Flags = new Dictionary<string, string>
    {
        ["endpoint"] = "CSI endpoint (unix:///path/csi.sock or tcp://127.0.0.1:PORT)",
        ["mode"] = $"'{NodeMode}' (default) or '{AllInOneMode}': the controller too, on the same CSI endpoint, for a single-node " +
                   "install; its agent API and registry then stay on unix sockets in the state dir",
        ["node-id"] = "this node's id, as Kubernetes names it (default: host name)",
        ["driver-name"] = $"CSI driver name (default {PluginIdentity.DefaultDriverName})",
        ["state-dir"] = "where pools and the node journal live (default /var/lib/solar-csi)",
        ["agent-endpoint"] = "where the storage agent API listens (default unix://STATE-DIR/agent.sock)",
        ["controller-endpoint"] = "the controller's registry endpoint to announce this agent to",
        ["allowed-root"] = "repeatable: staging/target paths must be under one of these (default /var/lib/kubelet)",
        ["max-volumes"] = "volumes this node can attach (default 128)",
        ["file-pool-capacity"] = "bytes the file and nbd pools may hand out together, e.g. 100Gi (default: the state filesystem's free space less what existing images may still grow into)",
        ["heartbeat-seconds"] = "how often the agent announces itself (default 5)",
        ["nbd-address"] = "address this node's NBD exports listen on, as other nodes reach it (default 127.0.0.1)",
        ["nbd-port-range"] = "TCP ports for NBD exports (default 10809-10999)",
        ["nbd-iops-filter"] = $"the nbdkit request-rate filter for iopsLimit (default: {Nbd.NbdServerOptions.RequestRateFilterFile} beside solar-node)",
        ["pools-config"] = "JSON file declaring this node's tmpfs, lvm, disk and pmem pools (see docs/local-media.md)",
        ["metrics-address"] = "serve Prometheus /metrics and /healthz over HTTP here, e.g. 0.0.0.0:9809 (default: off)",
        ["tls-dir"] = "ca.crt, tls.crt and tls.key: this node's certificate for mutual TLS on the agent API and towards the registry. " +
                      "Required when either is TCP on a non-loopback address. Issued by the controller with --bootstrap-token-file, " +
                      "or placed by the operator (`solar certs issue --node ID`)",
        ["bootstrap-token-file"] = "the install's bootstrap token: the node asks the controller (--ca-dir) for its certificate into --tls-dir " +
                                   "and renews it there before it expires",
        ["ca-file"] = "the cluster CA certificate to trust (default: --tls-dir's ca.crt); needed with --bootstrap-token-file",
        ["nbd-peers-filter"] = $"the nbdkit filter that refuses NBD connections from addresses no admitted node has (default: {Nbd.NbdServerOptions.PeersFilterFile} beside solar-node)",
        ["dataplane-endpoint"] = "unix:// socket of this node's data-plane host (`solar-node dataplane`): NBD exports, nbdfuse and the kernel " +
                                 "path's proxies are started there, so they outlive this plugin's container (default: started by this plugin)",
        ["reconcile-seconds"] = "how often residual mounts and devices are looked for after start-up (default 60, 0 = never)",
    };

    public static NodeOptions Parse(CommandLine cl)
    {
        var stateDir = Path.GetFullPath(cl.Get("state-dir", "/var/lib/solar-csi"));
        var nodeId = cl.Get("node-id", Environment.MachineName.ToLowerInvariant());
        if (!SolarCsi.Core.Ids.StorageId.IsValidNode(nodeId)) throw new FormatException($"node id '{nodeId}' must be a lowercase DNS name");
        var roots = cl.GetAll("allowed-root");
        var allInOne = cl.Get("mode", NodeMode) switch
        {
            NodeMode => false,
            AllInOneMode => true,
            var other => throw new FormatException($"--mode must be '{NodeMode}' or '{AllInOneMode}', not '{other}'"),
        };
        var agentEndpoint = GrpcEndpoint.Parse(cl.Get("agent-endpoint", $"unix://{stateDir}/agent.sock"));
        var controllerEndpoint = cl.Get("controller-endpoint") is { } c ? GrpcEndpoint.Parse(c) : null;
        var csiEndpoint = GrpcEndpoint.Parse(cl.Get("endpoint") ?? throw new FormatException("--endpoint is required"));
        var tlsDir = cl.Get("tls-dir") is { } t ? Path.GetFullPath(t) : null;
        var tokenFile = cl.Get("bootstrap-token-file") is { } token ? Path.GetFullPath(token) : null;
        var caFile = cl.Get("ca-file") is { } ca ? Path.GetFullPath(ca) : null;
        if (tokenFile is not null && (tlsDir is null || caFile is null))
            throw new FormatException("--bootstrap-token-file needs --tls-dir (where the issued certificate is kept) and --ca-file (whom to trust while asking)");
        NetworkExposure.RequireLocal(csiEndpoint, "--endpoint");
        NetworkExposure.RequireAuthenticated(agentEndpoint, "--agent-endpoint", tlsDir is not null);
        if (controllerEndpoint is not null) NetworkExposure.RequireAuthenticated(controllerEndpoint, "--controller-endpoint", tlsDir is not null);
        if (allInOne)
        {
            // One process serves the controller and its only node: nothing has to cross the network, so nothing
            // listens on it (a TCP agent API would let anyone who reaches the port drive the storage).
            if (!agentEndpoint.IsUnix) throw new FormatException($"--mode {AllInOneMode} keeps the agent API on a unix socket; --agent-endpoint must be unix://");
            if (controllerEndpoint is not null) throw new FormatException($"--mode {AllInOneMode} serves its own registry; drop --controller-endpoint");
            controllerEndpoint = GrpcEndpoint.Parse($"unix://{stateDir}/registry.sock");
        }
        return new NodeOptions(
            nodeId,
            CsiDriverName.Require(cl.Get("driver-name", PluginIdentity.DefaultDriverName)),
            stateDir,
            csiEndpoint,
            agentEndpoint,
            controllerEndpoint,
            roots.Count > 0 ? roots.Select(Path.GetFullPath).ToArray() : ["/var/lib/kubelet"],
            cl.GetInt("max-volumes", 128),
            cl.Get("file-pool-capacity") is { } cap ? Quantity.Parse(cap) : null,
            TimeSpan.FromSeconds(cl.GetInt("heartbeat-seconds", 5)),
            Nbd.NbdServerOptions.Parse(cl.Get("nbd-address", "127.0.0.1"), cl.Get("nbd-port-range", "10809-10999"),
                Nbd.NbdServerOptions.FindRequestRateFilter(cl.Get("nbd-iops-filter")), Nbd.NbdServerOptions.FindPeersFilter(cl.Get("nbd-peers-filter"))),
            TimeSpan.FromSeconds(cl.GetInt("reconcile-seconds", 60)),
            cl.Get("pools-config") is { } poolsFile ? SolarCsi.Node.Pools.PoolConfig.Load(poolsFile) : SolarCsi.Node.Pools.PoolConfig.Empty,
            cl.Get("metrics-address") is { } metrics ? SolarCsi.Core.Metrics.MetricsServer.ParseAddress(metrics) : null,
            allInOne,
            // Certificates are read (or obtained with the bootstrap token) by Program, not while flags are parsed.
            null,
            cl.Get("dataplane-endpoint") is { } dp ? UnixOnly(GrpcEndpoint.Parse(dp), "--dataplane-endpoint") : null,
            tlsDir is null ? null : new NodeCertificateSource(tlsDir, caFile, tokenFile));
    }

    private static GrpcEndpoint UnixOnly(GrpcEndpoint endpoint, string flag) =>
        endpoint.IsUnix ? endpoint : throw new FormatException($"{flag} must be unix://: the data-plane host never listens on the network");
}

/// <summary>Where this node's control-plane certificate lives and how it gets a new one.</summary>
/// <param name="TokenFile">the bootstrap token (first certificate from the controller); null when the operator places certificates.</param>
public sealed record NodeCertificateSource(string TlsDir, string? CaFile, string? TokenFile);
