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
        Assert.Equal(["group-snapshots", "volume-attributes-class"], Manifests.OptInComponents.Order(StringComparer.Ordinal));
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
    /// Mutual TLS is not optional: the base install gives the controller the cluster CA (certificate and key, from the
    /// Secret solar-ca) and the bootstrap token, and each node the CA's certificate only, the token, and a directory on
    /// its host for the certificate the controller issues it.
    /// </summary>
    [SkippableFact]
    public void EveryInstallRunsTheControlPlaneOverMutualTlsWithCertificatesFromTheController()
    {
        foreach (var objects in new[] { Manifests.Objects(Manifests.Base), Manifests.Objects(Manifests.Top) })
        foreach (var w in Workloads.All(objects).Where(w => w.Namespace == "solar-csi" && IsPlugin(w)))
        {
            var ours = w.Spec.Containers.Single(IsOurs);
            V1Volume MountedAt(string path, out V1VolumeMount mount)
            {
                mount = ours.VolumeMounts.Single(m => path.StartsWith(m.MountPath + "/", StringComparison.Ordinal) || path == m.MountPath);
                return Volume(w.Spec, mount.Name);
            }
            var token = MountedAt(Flag(ours.Args, "bootstrap-token-file") ?? throw new InvalidDataException($"{w.Name} has no bootstrap token"), out var tokenMount);
            Assert.Equal("solar-bootstrap-token", token.Secret.SecretName);
            Assert.True(tokenMount.ReadOnlyProperty);
            if (w.Kind == "Deployment")
            {
                var ca = MountedAt(Flag(ours.Args, "ca-dir") ?? throw new InvalidDataException("the controller has no --ca-dir"), out var caMount);
                Assert.Equal("solar-ca", ca.Secret.SecretName);
                Assert.Null(ca.Secret.Items);
                Assert.True(caMount.ReadOnlyProperty);
            }
            else
            {
                var ca = MountedAt(Flag(ours.Args, "ca-file") ?? throw new InvalidDataException("the node has no --ca-file"), out _);
                Assert.Equal("solar-ca", ca.Secret.SecretName);
                Assert.Equal(["ca.crt"], ca.Secret.Items.Select(i => i.Key));
                var tls = MountedAt(Flag(ours.Args, "tls-dir") ?? throw new InvalidDataException("the node has no --tls-dir"), out _);
                Assert.Equal("/var/lib/solar-csi", tls.HostPath.Path);
            }
        }
    }
}
