using SolarCsi.Core.Hosting;

namespace SolarCsi.Controller;

public sealed record ControllerOptions(string DriverName, GrpcEndpoint CsiEndpoint, GrpcEndpoint RegistryEndpoint, TimeSpan AgentTimeout,
    System.Net.IPEndPoint? MetricsAddress = null)
{
    public static readonly TimeSpan DefaultAgentTimeout = TimeSpan.FromSeconds(20);

    public static readonly IReadOnlyDictionary<string, string> Flags = new Dictionary<string, string>
    {
        ["endpoint"] = "CSI endpoint (unix:///path/csi.sock or tcp://127.0.0.1:PORT)",
        ["registry-endpoint"] = "where node agents announce themselves (e.g. tcp://0.0.0.0:9870)",
        ["driver-name"] = $"CSI driver name (default {PluginIdentity.DefaultDriverName})",
        ["agent-timeout-seconds"] = "an agent not heard from for this long is unavailable (default 20)",
        ["metrics-address"] = "serve Prometheus /metrics and /healthz over HTTP here, e.g. 0.0.0.0:9808 (default: off)",
        ["node-id"] = "accepted for symmetry with the node plugin; unused",
        ["state-dir"] = "accepted for symmetry with the node plugin; the controller keeps no state",
    };

    public static ControllerOptions Parse(CommandLine cl) => new(
        CsiDriverName.Require(cl.Get("driver-name", PluginIdentity.DefaultDriverName)),
        GrpcEndpoint.Parse(cl.Get("endpoint") ?? throw new FormatException("--endpoint is required")),
        GrpcEndpoint.Parse(cl.Get("registry-endpoint") ?? throw new FormatException("--registry-endpoint is required")),
        TimeSpan.FromSeconds(cl.GetInt("agent-timeout-seconds", (int)DefaultAgentTimeout.TotalSeconds)),
        cl.Get("metrics-address") is { } metrics ? SolarCsi.Core.Metrics.MetricsServer.ParseAddress(metrics) : null);
}
