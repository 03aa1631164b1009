using k8s.Models;
using static SolarCsi.Tests.Deploy.Workloads;

namespace SolarCsi.Tests.Deploy;

/// <summary>
/// Every upstream container is a pinned sidecar, started only with flags and feature gates its version has, and
/// each sidecar's ClusterRole is upstream's rule set at that version (<see cref="Sidecars"/>).
/// </summary>
public sealed class SidecarTests
{
    private static IReadOnlyList<object> All => Manifests.Objects(Manifests.Everything);

    private static IEnumerable<(Workload Pod, V1Container Container)> Upstream() =>
        Workloads.All(All).Where(w => w.Namespace == "solar-csi").SelectMany(w => Containers(w.Spec).Where(c => !IsOurs(c)).Select(c => (w, c)));

    [SkippableFact]
    public void EveryUpstreamContainerIsAPinnedSidecarPulledOnlyWhenMissing()
    {
        var seen = new HashSet<string>();
        foreach (var (pod, c) in Upstream())
        {
            var sidecar = Sidecars.ByContainer(c.Name);
            Assert.Equal(sidecar.PinnedImage, c.Image);
            // A node that was given the image (the registry-less install) never asks a registry for it.
            Assert.Equal("IfNotPresent", c.ImagePullPolicy);
            seen.Add(c.Name);
        }
        Assert.Equal(Sidecars.All.Select(s => s.Container).Order(), seen.Order());
        foreach (var (_, c) in Workloads.All(All).SelectMany(w => Containers(w.Spec).Where(IsOurs).Select(c => (w, c))))
            Assert.Equal("IfNotPresent", c.ImagePullPolicy);
    }

    [SkippableFact]
    public void EveryFlagAndFeatureGateExistsInThePinnedVersion()
    {
        foreach (var (pod, c) in Upstream())
        {
            var sidecar = Sidecars.ByContainer(c.Name);
            // Go's flag package exits on an unknown flag: csi-snapshotter v8.2.0 on --enable-volume-group-snapshots.
            Assert.All(FlagNames(c.Args), f => Assert.True(sidecar.Flags.Contains(f), $"{c.Name} {sidecar.Version} has no --{f} ({sidecar.Cite(sidecar.MainGo)})"));
            // An unknown gate is fatal too (SetFromMap).
            Assert.All(FeatureGates(c.Args).Keys, g => Assert.True(sidecar.FeatureGates.Contains(g), $"{c.Name} {sidecar.Version} has no feature gate {g}"));
            var names = FlagNames(c.Args).ToHashSet();
            foreach (var pair in sidecar.Exclusive)
                Assert.False(pair.All(names.Contains), $"{c.Name}: --{pair[0]} and --{pair[1]} cannot both be set");
        }
    }

    [SkippableFact]
    public void EachSidecarsClusterRoleIsItsUpstreamRuleSet()
    {
        var roles = All.OfType<V1ClusterRole>().ToDictionary(r => r.Metadata.Name);
        foreach (var sidecar in Sidecars.All.Where(s => s.ClusterRole is not null))
        {
            Assert.True(roles.TryGetValue(sidecar.ClusterRole!, out var role), $"no ClusterRole {sidecar.ClusterRole}");
            Assert.Equal(Rbac.Flatten(sidecar.UpstreamRbac), Rbac.Flatten(Rbac.RulesOf(role)));
        }
    }

    [SkippableFact]
    public void TheFlagCheckCatchesTheRemovedGroupSnapshotFlag()
    {
        // What the group-snapshots component must not do (v8.2.0's CHANGELOG: replaced by the feature gate).
        Assert.DoesNotContain("enable-volume-group-snapshots", Sidecars.Snapshotter.Flags);
        Assert.Contains("CSIVolumeGroupSnapshot", Sidecars.Snapshotter.FeatureGates);
        Assert.Throws<InvalidDataException>(() => FeatureGates(["--feature-gates=CSIVolumeGroupSnapshot"]));
        Assert.Equal(new Dictionary<string, bool> { ["Topology"] = true, ["VolumeAttributesClass"] = true },
            FeatureGates(["--feature-gates=Topology=true", "--csi-address=/x", "--feature-gates=VolumeAttributesClass=true"]));
    }
}
