using SolarCsi.Core.Hosting;

namespace SolarCsi.Controller;

public sealed record ControllerOptions(string DriverName, GrpcEndpoint CsiEndpoint, GrpcEndpoint RegistryEndpoint, TimeSpan AgentTimeout,
    System.Net.IPEndPoint? MetricsAddress = null, TimeSpan? FreezeLease = null, string? StateDir = null,
    SolarCsi.Core.Hosting.Tls.ClusterTls? Tls = null)
{
    public static readonly TimeSpan DefaultAgentTimeout = TimeSpan.FromSeconds(20);
    public static readonly TimeSpan DefaultFreezeLease = TimeSpan.FromMinutes(5);

    /// <summary>How long a node holds writers frozen for a snapshot before it thaws them by itself.</summary>
    public TimeSpan WriterFreezeLease => FreezeLease ?? DefaultFreezeLease;

    public static readonly IReadOnlyDictionary<string, string> Flags = new Dictionary<string, string>
    {
        ["endpoint"] = "CSI endpoint (unix:///path/csi.sock or tcp://127.0.0.1:PORT)",
        ["registry-endpoint"] = "where node agents announce themselves (e.g. tcp://0.0.0.0:9870)",
        ["driver-name"] = $"CSI driver name (default {PluginIdentity.DefaultDriverName})",
        ["agent-timeout-seconds"] = "an agent not heard from for this long is unavailable (default 20)",
        ["metrics-address"] = "serve Prometheus /metrics and /healthz over HTTP here, e.g. 0.0.0.0:9808 (default: off)",
        ["freeze-lease-seconds"] = "a node thaws the writers it froze for a snapshot after this long if the controller has not (default 300); " +
                                   "a snapshot whose freeze ended before its cut fails",
        ["tls-dir"] = "ca.crt, tls.crt and tls.key (a TLS Secret; the certificate from `solar certs issue --controller`): mutual TLS on the " +
                      "registry and towards the agents when they are TCP (default: plaintext, logged)",
        ["node-id"] = "accepted for symmetry with the node plugin; unused",
        ["state-dir"] = "where the controller keeps which volume each CSI name was given to (default: in memory only, which a restart loses)",
    };

    public static ControllerOptions Parse(CommandLine cl) => new(
        CsiDriverName.Require(cl.Get("driver-name", PluginIdentity.DefaultDriverName)),
        GrpcEndpoint.Parse(cl.Get("endpoint") ?? throw new FormatException("--endpoint is required")),
        GrpcEndpoint.Parse(cl.Get("registry-endpoint") ?? throw new FormatException("--registry-endpoint is required")),
        TimeSpan.FromSeconds(cl.GetInt("agent-timeout-seconds", (int)DefaultAgentTimeout.TotalSeconds)),
        cl.Get("metrics-address") is { } metrics ? SolarCsi.Core.Metrics.MetricsServer.ParseAddress(metrics) : null,
        TimeSpan.FromSeconds(FreezeLeaseSeconds(cl.GetInt("freeze-lease-seconds", (int)DefaultFreezeLease.TotalSeconds))),
        cl.Get("state-dir") is { } dir ? Path.GetFullPath(dir) : null,
        cl.Get("tls-dir") is { } tls ? SolarCsi.Core.Hosting.Tls.ClusterTls.LoadFor(tls, SolarCsi.Core.Hosting.Tls.ClusterTls.ControllerIdentity) : null);

    // The node refuses leases over 10 minutes (FreezeLeases.MaxLease).
    private static int FreezeLeaseSeconds(int seconds) =>
        seconds is >= 1 and <= 600 ? seconds : throw new FormatException($"--freeze-lease-seconds must be between 1 and 600, not {seconds}");
}
