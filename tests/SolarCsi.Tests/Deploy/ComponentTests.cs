using k8s;
using k8s.Models;
using static SolarCsi.Tests.Deploy.Workloads;

namespace SolarCsi.Tests.Deploy;

/// <summary>
/// The optional features in deploy/components: each switches on in an overlay of deploy/ as Kubernetes users do it,
/// only adds to what it patches, and refuses to render where its position-based patches would miss.
/// </summary>
public sealed class ComponentTests
{
    public static TheoryData<string> OptIn => new(Manifests.OptInComponents);

    [Fact]
    public void SnapshotsAndMetricsAreOnByDefaultAndTheRestIsOptIn()
    {
        Assert.Equal(["metrics", "snapshots"], Manifests.DefaultComponents.Order(StringComparer.Ordinal));
        Assert.Equal(["group-snapshots", "mtls", "volume-attributes-class"], Manifests.OptInComponents.Order(StringComparer.Ordinal));
        foreach (var component in Manifests.AllComponents)
            Assert.Contains("kind: Component", File.ReadAllText(Manifests.DeployPath($"components/{component}/kustomization.yaml")));
    }

    [SkippableTheory]
    [MemberData(nameof(OptIn))]
    public void EachOptInComponentRendersOnTopOfDeployAlone(string component)
    {
        var objects = Manifests.Objects(Manifests.WithComponents(component));
        Assert.True(objects.Count >= Manifests.Objects(Manifests.Top).Count);
    }

    [SkippableFact]
    public void ComponentsOnlyAddToTheContainersTheyPatch()
    {
        static Dictionary<string, V1Container> ContainersOf(string kustomization) =>
            Workloads.All(Manifests.Objects(kustomization)).SelectMany(w => Containers(w.Spec).Select(c => (Key: $"{w.Name}/{c.Name}", c)))
                .ToDictionary(x => x.Key, x => x.c);
        var without = ContainersOf(Manifests.Base);
        var with = ContainersOf(Manifests.Everything);
        foreach (var (key, c) in without)
        {
            Assert.True(with.TryGetValue(key, out var patched), $"{key} is gone");
            Assert.Equal(c.Args ?? [], (patched.Args ?? []).Take(c.Args?.Count ?? 0));
            Assert.Equal(c.Image, patched.Image);
            Assert.Equal(KubernetesJson.Serialize(c.VolumeMounts ?? []), KubernetesJson.Serialize((patched.VolumeMounts ?? []).Take(c.VolumeMounts?.Count ?? 0)));
        }
    }

    [SkippableFact]
    public void GroupSnapshotsWithoutTheSnapshotsComponentFailToRenderInsteadOfPatchingAnotherContainer()
    {
        var error = Assert.Throws<InvalidOperationException>(() => Manifests.RenderOverlay(["base", "storageclasses"], ["group-snapshots"]));
        // The snapshots component appends csi-snapshotter at index 5; without it the test operation finds nothing there.
        Assert.Contains("test operation does not apply", error.Message);
        Assert.Contains("containers/5/name", error.Message);
    }

    [SkippableFact]
    public void TheMetricsComponentIsWhatServesMetrics()
    {
        static IEnumerable<V1Container> Ours(IReadOnlyList<object> objects) => Workloads.All(objects).SelectMany(w => w.Spec.Containers.Where(IsOurs));
        var without = Manifests.Objects(Manifests.Base);
        Assert.All(Ours(without), c => Assert.Null(Flag(c.Args, "metrics-address")));
        var with = Manifests.Objects(Manifests.Top);
        // The data-plane host listens on nothing but its unix socket: no metrics, no TLS.
        foreach (var w in Workloads.All(with).Where(w => w.Namespace == "solar-csi" && IsPlugin(w)))
        {
            var ours = w.Spec.Containers.Single(IsOurs);
            var port = ListenPort(Flag(ours.Args, "metrics-address") ?? throw new InvalidDataException($"{w.Name} serves no metrics"));
            Assert.Equal(port, Port(ours, "metrics"));
            var annotations = (w.Kind == "Deployment"
                ? with.OfType<V1Deployment>().Single(d => d.Metadata.Name == w.Name).Spec.Template.Metadata.Annotations
                : with.OfType<V1DaemonSet>().Single(d => d.Metadata.Name == w.Name).Spec.Template.Metadata.Annotations);
            Assert.Equal(port.ToString(System.Globalization.CultureInfo.InvariantCulture), annotations["prometheus.io/port"]);
        }
    }

    /// <summary>
    /// With mtls, both plugins get --tls-dir where their certificates are mounted: the controller's from its Secret,
    /// each node's from that node's own directory (a node certificate speaks for one node only).
    /// </summary>
    [SkippableFact]
    public void TheMtlsComponentGivesEachPluginItsOwnCertificates()
    {
        var objects = Manifests.Objects(Manifests.WithComponents("mtls"));
        foreach (var w in Workloads.All(objects).Where(w => w.Namespace == "solar-csi" && IsPlugin(w)))
        {
            var ours = w.Spec.Containers.Single(IsOurs);
            var dir = Flag(ours.Args, "tls-dir") ?? throw new InvalidDataException($"{w.Name} has no --tls-dir");
            var mount = ours.VolumeMounts.Single(m => m.MountPath == dir);
            Assert.True(mount.ReadOnlyProperty);
            var volume = Volume(w.Spec, mount.Name);
            if (w.Kind == "Deployment") Assert.Equal("solar-controller-tls", volume.Secret.SecretName);
            else Assert.Equal(("/etc/solar-csi/tls", "Directory"), (volume.HostPath.Path, volume.HostPath.Type));
        }
        Assert.All(Workloads.All(Manifests.Objects(Manifests.Top)).Where(w => w.Namespace == "solar-csi"),
            w => Assert.Null(Flag(w.Spec.Containers.Single(IsOurs).Args, "tls-dir")));
    }
}
