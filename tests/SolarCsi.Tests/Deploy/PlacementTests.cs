using k8s.Models;
using static SolarCsi.Tests.Deploy.Workloads;

namespace SolarCsi.Tests.Deploy;

/// <summary>The driver's pods land only where they can run, are admitted with their priority, and share the host's LVM.</summary>
public sealed class PlacementTests
{
    private static IReadOnlyList<object> All => Manifests.Objects(Manifests.Top);
    private static IEnumerable<Workload> Driver => Workloads.All(All).Where(w => w.Namespace == "solar-csi");

    [SkippableFact]
    public void EveryDriverPodAsksForALinuxNode()
    {
        Assert.NotEmpty(Driver);
        foreach (var w in Driver)
            Assert.True(w.Spec.NodeSelector?.TryGetValue("kubernetes.io/os", out var os) == true && os == "linux", $"{w.Kind} {w.Name} may land on a Windows node");
    }

    [SkippableFact]
    public void TheNodePluginToleratesNamedTaintsOnly()
    {
        var node = Driver.Single(w => w is { Kind: "DaemonSet", Name: "solar-node" });
        Assert.NotEmpty(node.Spec.Tolerations);
        // A toleration without a key tolerates every taint there is, including ones put on nodes to keep them free.
        Assert.All(node.Spec.Tolerations, t => Assert.False(string.IsNullOrEmpty(t.Key), $"toleration {t.OperatorProperty} {t.Effect} has no key"));
        Assert.Contains(node.Spec.Tolerations, t => t is { Key: "node-role.kubernetes.io/control-plane", OperatorProperty: "Exists", Effect: "NoSchedule" });
    }

    [SkippableFact]
    public void EveryCriticalPriorityClassIsCoveredByAQuotaInItsNamespace()
    {
        // Where the API server limits the system-*-critical classes (ResourceQuota admission limitedResources), pods
        // using them are admitted only in a namespace whose ResourceQuota selects that class.
        var critical = Driver.Where(w => w.Spec.PriorityClassName?.StartsWith("system-", StringComparison.Ordinal) == true).ToList();
        Assert.NotEmpty(critical);
        foreach (var w in critical)
        {
            var quota = All.OfType<V1ResourceQuota>().SingleOrDefault(q => q.Metadata.NamespaceProperty == w.Namespace
                && q.Spec.ScopeSelector?.MatchExpressions?.Any(e => e is { ScopeName: "PriorityClass", OperatorProperty: "In" } && e.Values.Contains(w.Spec.PriorityClassName)) == true);
            Assert.True(quota is not null, $"{w.Kind} {w.Name} uses {w.Spec.PriorityClassName}, which no ResourceQuota in {w.Namespace} covers");
            // A limit that never binds: one node plugin per node (5000 nodes at most) and one controller.
            Assert.InRange(quota.Spec.Hard["pods"].ToDecimal(), 5001m, decimal.MaxValue);
            Assert.All(quota.Spec.Hard.Keys, k => Assert.Equal("pods", k));
        }
    }

    [SkippableFact]
    public void LvmInTheNodePluginUsesTheHostsConfigurationAndLocks()
    {
        // The node runs LVM's tools (ImageToolsTests reads them from the sources); beside the host's own LVM they must
        // read the same lvm.conf and take the same locks.
        Assert.Contains("lvcreate", ImageToolsTests.ProgramsTheNodeRuns());
        var node = Driver.Single(w => w is { Kind: "DaemonSet", Name: "solar-node" });
        var plugin = node.Spec.Containers.Single(IsOurs);
        foreach (var path in new[] { "/etc/lvm", "/run/lock/lvm" })
        {
            var mount = plugin.VolumeMounts.SingleOrDefault(m => m.MountPath == path) ?? throw new InvalidDataException($"{path} is not mounted");
            Assert.Equal(path, Volume(node.Spec, mount.Name).HostPath.Path);
            Assert.NotEqual(true, mount.ReadOnlyProperty);
        }
        Assert.Equal("1", plugin.Env.Single(e => e.Name == "DM_DISABLE_UDEV").Value);
    }
}
