using k8s;
using k8s.Models;
using SolarCsi.Core.Hosting;
using SolarCsi.Node.Staging;
using static SolarCsi.Tests.Deploy.Workloads;

namespace SolarCsi.Tests.Deploy;

/// <summary>
/// When the node plugin pod stops (node shutdown, pod deletion), kubelet can still reach the plugin for every
/// NodeUnpublish and NodeUnstage its preStop hook waits for: node-driver-registrar keeps the driver registered until
/// solar-node has exited. Kubelet's stop order is modelled by <see cref="PodTermination"/>; the registrar's socket
/// lifetime is upstream's (<see cref="Sidecars.RegistrationSocket"/>).
/// </summary>
public sealed class NodeShutdownTests
{
    private static Workload NodePod(IReadOnlyList<object> objects) => Workloads.All(objects).Single(w => w is { Kind: "DaemonSet", Name: "solar-node" });
    private static Workload Node => NodePod(Manifests.Objects(Manifests.Top));

    private static int HookTimeout(V1Container plugin) =>
        new CommandLine(plugin.Lifecycle.PreStop.Exec.Command.Skip(2), PreStopHook.Flags).GetInt("timeout-seconds", 300);

    /// <summary>The registrar's SIGTERM time (when its socket goes) and solar-node's exit, the hook running this long.</summary>
    private static (double RegistrarSignalled, double PluginExited, double RegistrarExited) Stop(Workload pod, double hookSeconds)
    {
        var timeline = PodTermination.Timeline(pod.Spec, c => IsOurs(c) ? hookSeconds : 0, c => IsOurs(c) ? 5 : 1);
        var plugin = pod.Spec.Containers.Single(IsOurs).Name;
        return (timeline[Sidecars.Registrar.Container].Signalled, timeline[plugin].Exited, timeline[Sidecars.Registrar.Container].Exited);
    }

    [SkippableFact]
    public void TheRegistrarIsSignalledOnlyAfterTheNodePluginHasExitedHoweverLongThePreStopHookWaits()
    {
        var timeout = HookTimeout(Node.Spec.Containers.Single(IsOurs));
        foreach (var hook in new double[] { 0, 1, 12, timeout / 2.0, timeout })
        {
            var (registrarSignalled, pluginExited, registrarExited) = Stop(Node, hook);
            Assert.True(registrarSignalled >= pluginExited,
                $"with a {hook} s preStop the registrar removes its socket at {registrarSignalled} s, before solar-node exits at {pluginExited} s: the unstages after that fail");
            // And the registrar's own clean exit still fits in the grace period.
            Assert.InRange(registrarExited, pluginExited, Node.Spec.TerminationGracePeriodSeconds ?? 30);
        }
    }

    [SkippableFact]
    public void AsARegularContainerTheRegistrarWouldLoseTheRaceWhichIsWhatTheTestAboveCatches()
    {
        // The layout before issue #19: the registrar beside solar-node in containers.
        var objects = Manifests.Objects(Manifests.Top);
        var spec = KubernetesJson.Deserialize<V1PodSpec>(KubernetesJson.Serialize(NodePod(objects).Spec));
        var registrar = spec.InitContainers.Single(c => c.Name == Sidecars.Registrar.Container);
        spec.InitContainers.Remove(registrar);
        registrar.RestartPolicy = null;
        spec.Containers.Add(registrar);
        var old = new Workload("DaemonSet", "solar-csi", "solar-node", spec);

        var (registrarSignalled, pluginExited, _) = Stop(old, 60);
        Assert.Equal(0, registrarSignalled);
        Assert.True(pluginExited > 60);
    }

    [SkippableFact]
    public void TheRegistrarHasNoStartupProbeSoSolarNodeStartsAfterItRatherThanNever()
    {
        // kubelet starts solar-node once each sidecar before it counts as started: at once without a startupProbe, and
        // never with one that waits for the registration socket, which needs solar-node's CSI socket first.
        var registrar = Container(Node.Spec, Sidecars.Registrar.Container);
        Assert.True(IsNativeSidecar(registrar, Node.Spec));
        Assert.Null(registrar.StartupProbe);
        Assert.Null(registrar.Lifecycle?.PreStop);
        Assert.All(Node.Spec.InitContainers, c => Assert.Equal("Always", c.RestartPolicy));
    }

    [SkippableFact]
    public void TheRegistrationSocketLivesInKubeletsPluginRegistryForAsLongAsTheRegistrarRuns()
    {
        var registrar = Container(Node.Spec, Sidecars.Registrar.Container);
        var socket = Sidecars.RegistrationSocket(registrar.Args, PluginIdentity.DefaultDriverName);
        Assert.Equal($"/registration/{PluginIdentity.DefaultDriverName}-reg.sock", socket);
        // Kubelet's plugin watcher looks for it on the host in plugins_registry.
        var (volume, relative) = Locate(registrar, socket);
        Assert.Equal($"/var/lib/kubelet/plugins_registry/{PluginIdentity.DefaultDriverName}-reg.sock",
            Path.Combine(Volume(Node.Spec, volume).HostPath.Path, relative));
    }
}
