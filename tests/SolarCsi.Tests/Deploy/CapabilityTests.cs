using static SolarCsi.Tests.Deploy.Rbac;
using static SolarCsi.Tests.Deploy.Workloads;

namespace SolarCsi.Tests.Deploy;

/// <summary>
/// Every capability the driver advertises has a row in <see cref="CapabilityTable"/>, and each row holds in the
/// install that switches it on: deploy/ plus the row's component, rendered by kustomize. docs/deploy.md carries
/// the same table.
/// </summary>
public sealed class CapabilityTests
{
    public static TheoryData<string> Capabilities => new(CapabilityTable.Rows.Select(r => r.Capability));

    [Fact]
    public void EveryAdvertisedCapabilityHasExactlyOneRowAndEveryRowIsAdvertised()
    {
        var advertised = AdvertisedCapabilities.All();
        // The reader itself must find what we know is there, or an empty set would pass.
        Assert.Contains("Controller MODIFY_VOLUME", advertised);
        Assert.Contains("Plugin GROUP_CONTROLLER_SERVICE", advertised);
        Assert.Contains("Node STAGE_UNSTAGE_VOLUME", advertised);
        Assert.Contains("Plugin VolumeExpansion ONLINE", advertised);

        var rows = CapabilityTable.Rows.Select(r => r.Capability).ToList();
        Assert.Equal(rows.Count, rows.Distinct().Count());
        Assert.All(advertised, c => Assert.True(rows.Contains(c), $"the driver advertises {c}, which CapabilityTable has no row for"));
        Assert.All(rows, r => Assert.True(advertised.Contains(r), $"CapabilityTable has a row for {r}, which the driver does not advertise"));
    }

    [SkippableTheory]
    [MemberData(nameof(Capabilities))]
    public void TheRowHoldsInTheInstallThatSwitchesItOn(string capability)
    {
        var row = CapabilityTable.Rows.Single(r => r.Capability == capability);
        var install = row.Component == "base" || Manifests.DefaultComponents.Contains(row.Component)
            ? Manifests.Top : Manifests.WithComponents(row.Component);
        Assert.True(row.Component == "base" || Manifests.AllComponents.Contains(row.Component), $"{capability}: no component {row.Component}");
        var objects = Manifests.Objects(install);
        var containers = Workloads.All(objects).SelectMany(w => Containers(w.Spec)).ToList();

        Assert.True(row.Sidecars.Length > 0 || row.Cluster.Length > 0, $"{capability}: a row with no sidecar must say what calls it instead");
        foreach (var sidecar in row.Sidecars)
            Assert.True(containers.Any(c => c.Name == sidecar), $"{capability}: no {sidecar} in deploy/ with {row.Component}");

        foreach (var flag in row.Flags)
        {
            var (name, arg) = (flag[..flag.IndexOf(' ')], flag[(flag.IndexOf(' ') + 1)..]);
            var args = containers.Single(c => c.Name == name).Args ?? [];
            if (arg.StartsWith("--feature-gates=", StringComparison.Ordinal))
                Assert.All(FeatureGates([arg]), g => Assert.True(FeatureGates(args).GetValueOrDefault(g.Key) == g.Value, $"{capability}: {name} does not set {g.Key}={g.Value}"));
            else
                Assert.True(args.Contains(arg), $"{capability}: {name} is not started with {arg}");
        }

        var controller = Workloads.All(objects).Single(w => w is { Kind: "Deployment", Name: "solar-controller" });
        var subject = new Subject(controller.Namespace, controller.Spec.ServiceAccountName);
        foreach (var rule in row.Rbac)
            Assert.True(Granted(objects, subject, rule.Group, rule.Resource, null).IsSupersetOf(rule.Verbs), $"{capability}: {subject} lacks {rule}");
        foreach (var rule in row.RbacInNamespace)
            Assert.True(Granted(objects, subject, rule.Group, rule.Resource, controller.Namespace).IsSupersetOf(rule.Verbs), $"{capability}: {subject} lacks {rule} in {controller.Namespace}");

        foreach (var check in row.Objects)
        {
            Assert.True(CapabilityTable.ObjectChecks.TryGetValue(check, out var holds), $"{capability}: no check '{check}'");
            Assert.Null(holds(objects));
        }
        Assert.True(Version.Parse(row.MinKubernetes) <= Version.Parse(CapabilityTable.InstallMinimum) || row.Component != "base",
            $"{capability} is on by default but needs Kubernetes {row.MinKubernetes}, above the install's {CapabilityTable.InstallMinimum}");
    }

    [SkippableFact]
    public void AnOptInRowDoesNotHoldWithoutItsComponentSoTheTableIsNotTrivial()
    {
        // ModifyVolume and group snapshots were advertised but switched off before issue #19: the checks above catch it.
        var top = Manifests.Objects(Manifests.Top);
        var resizer = Workloads.All(top).SelectMany(w => Containers(w.Spec)).Single(c => c.Name == Sidecars.Resizer.Container);
        Assert.False(FeatureGates(resizer.Args).GetValueOrDefault("VolumeAttributesClass"));
        var snapshotter = Workloads.All(top).SelectMany(w => Containers(w.Spec)).Single(c => c.Name == Sidecars.Snapshotter.Container);
        Assert.False(FeatureGates(snapshotter.Args).GetValueOrDefault("CSIVolumeGroupSnapshot"));
        Assert.NotNull(CapabilityTable.ObjectChecks["a VolumeGroupSnapshotClass for the driver"](top));
    }

    [Fact]
    public void TheInstallMinimumIsTheHighestOfTheBaseRows()
    {
        Assert.Equal(Version.Parse(CapabilityTable.InstallMinimum),
            CapabilityTable.Rows.Where(r => r.Component == "base").Max(r => Version.Parse(r.MinKubernetes)));
    }
}
