using k8s.Models;
using static SolarCsi.Tests.Deploy.Workloads;

namespace SolarCsi.Tests.Deploy;

/// <summary>
/// Every probe checks something real, and none can restart the container that holds the node's data plane.
/// </summary>
public sealed class ProbeTests
{
    private static IReadOnlyList<object> All => Manifests.Objects(Manifests.Everything);

    private static IEnumerable<(Workload Pod, V1Container Container, string Kind, V1Probe Probe)> Probes() =>
        Workloads.All(All).SelectMany(w => Containers(w.Spec).SelectMany(c =>
            new[] { ("liveness", c.LivenessProbe), ("readiness", c.ReadinessProbe), ("startup", c.StartupProbe) }
                .Where(p => p.Item2 is not null).Select(p => (w, c, p.Item1, p.Item2!))));

    [SkippableFact]
    public void NoProbeCanRestartTheNodePlugin()
    {
        // solar-node runs the nbdkit exports, the local NBD proxies and nbdfuse: a restart cuts every NBD volume on
        // the node. A failed liveness or startup probe restarts the container; a readiness probe only reports.
        var node = Workloads.All(All).Single(w => w is { Kind: "DaemonSet", Name: "solar-node" });
        var plugin = node.Spec.Containers.Single(IsOurs);
        Assert.Null(plugin.LivenessProbe);
        Assert.Null(plugin.StartupProbe);
        Assert.NotNull(plugin.ReadinessProbe);
    }

    [SkippableFact]
    public void EveryProbeIsAnHttpGetOfAHealthEndpointThatAContainerOfThePodServes()
    {
        var probes = Probes().ToList();
        Assert.NotEmpty(probes);
        foreach (var (pod, container, kind, probe) in probes)
        {
            var what = $"{pod.Name}/{container.Name} {kind} probe";
            // An exec probe proves little: node-driver-registrar v2.13.0's --mode=kubelet-registration-probe exits 0
            // before looking at anything (cmd/csi-node-driver-registrar/main.go).
            Assert.True(probe.HttpGet is not null, $"{what} is not an httpGet");
            Assert.Equal("/healthz", probe.HttpGet.Path);
            // kubelet resolves a named port among the probed container's own ports.
            var port = Port(container, probe.HttpGet.Port);
            var servers = Containers(pod.Spec).Where(c => Sidecars.HealthEndpointFlag.ContainsKey(c.Name))
                .Select(c => (c, Address: Flag(c.Args, Sidecars.HealthEndpointFlag[c.Name])))
                .Where(s => s.Address is not null && ListenPort(s.Address) == port).ToList();
            var server = Assert.Single(servers);
            // The probe goes to the pod's IP: the endpoint listens on every address or on that one.
            var host = Expand(server.Address![..server.Address!.LastIndexOf(':')], Workloads.Environment(pod, server.c, All));
            Assert.True(host.Length == 0 || (pod.Spec.HostNetwork == true && host == FieldSamples["status.podIP"]),
                $"{what}: {server.c.Name} listens on {host}, where kubelet's probe of the pod IP does not arrive");
        }
    }

    [SkippableFact]
    public void TheRegistrarIsProbedThroughItsHttpEndpoint()
    {
        var node = Workloads.All(All).Single(w => w is { Kind: "DaemonSet", Name: "solar-node" });
        var registrar = Container(node.Spec, Sidecars.Registrar.Container);
        Assert.NotNull(Flag(registrar.Args, "http-endpoint"));
        Assert.Equal(ListenPort(Flag(registrar.Args, "http-endpoint")!), Port(registrar, registrar.LivenessProbe.HttpGet.Port));
        Assert.DoesNotContain(registrar.Args, a => a.StartsWith("--mode", StringComparison.Ordinal));
    }
}
