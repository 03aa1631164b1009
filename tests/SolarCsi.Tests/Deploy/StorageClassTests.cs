using k8s.Models;
using SolarCsi.Core.Validation;
using SolarCsi.Node.Pools;
using static SolarCsi.Tests.Deploy.Workloads;

namespace SolarCsi.Tests.Deploy;

/// <summary>The StorageClasses, snapshot class, pools ConfigMap and the example workload say what the driver accepts.</summary>
public sealed class StorageClassTests
{
    // Which media can grow a volume (README "Capabilities", row "expansion").
    private static readonly Dictionary<string, bool> Grows = new()
    {
        [VolumeParameters.FileMedia] = true, [VolumeParameters.NbdMedia] = true, [VolumeParameters.TmpfsMedia] = true,
        [VolumeParameters.LvmMedia] = true, [VolumeParameters.DiskMedia] = false, [VolumeParameters.PmemMedia] = false,
    };

    private static IEnumerable<(V1StorageClass Class, VolumeParameters Parameters)> Classes() =>
        Manifests.Of<V1StorageClass>(Manifests.Top).Select(sc => (sc, VolumeParameters.Parse(new Dictionary<string, string>(sc.Parameters ?? new Dictionary<string, string>()))));

    [SkippableFact]
    public void EveryMediaHasAClassWhoseParametersTheDriverAccepts()
    {
        var classes = Classes().ToArray();
        Assert.Equal(SolarCsi.Core.Media.MediaCatalog.All.Select(m => m.Name).Order(), classes.Select(c => c.Parameters.Media).Distinct().Order());
        Assert.Equal(classes.Length, classes.Select(c => c.Class.Metadata.Name).Distinct().Count());
    }

    [SkippableFact]
    public void LocalMediaWaitForTheirPodAndNbdBindsAtOnce()
    {
        foreach (var (sc, p) in Classes())
            Assert.True((p.Medium.IsLocal ? "WaitForFirstConsumer" : "Immediate") == sc.VolumeBindingMode,
                $"{sc.Metadata.Name} ({p.Media}) binds {sc.VolumeBindingMode}");
    }

    [SkippableFact]
    public void ExpansionIsAllowedExactlyWhereTheMediaCanGrow()
    {
        foreach (var (sc, p) in Classes())
            Assert.True(Grows[p.Media] == (sc.AllowVolumeExpansion ?? false), $"{sc.Metadata.Name} ({p.Media}): allowVolumeExpansion {sc.AllowVolumeExpansion}");
    }

    [SkippableFact]
    public void TheFilesystemEachClassEndsUpWithIsOneItsMediaServes()
    {
        // csi-provisioner puts the class's fstype, or its own --default-fstype, into the volume capability.
        var provisioner = Container(Manifests.Single<V1Deployment>(Manifests.Top, "solar-controller").Spec.Template.Spec, "csi-provisioner");
        var fallback = Flag(provisioner.Args, "default-fstype") ?? "";
        foreach (var (sc, p) in Classes())
        {
            var fsType = sc.Parameters.TryGetValue("csi.storage.k8s.io/fstype", out var f) ? f : fallback;
            var rules = CapabilityRules.For(p.Media);
            Assert.True(fsType.Length == 0 || rules.FsTypes.Contains(fsType), $"{sc.Metadata.Name} ({p.Media}) would get fs_type '{fsType}'; it serves {string.Join(", ", rules.FsTypes)}");
        }
    }

    [SkippableFact]
    public void TheSnapshotClassIsForThisDriver()
    {
        var vsc = Assert.Single(Manifests.Of<VolumeSnapshotClass>(Manifests.Top));
        Assert.Equal(Assert.Single(Manifests.Of<V1CSIDriver>(Manifests.Top)).Metadata.Name, vsc.Driver);
    }

    [SkippableFact]
    public void ThePoolsConfigMapParsesAndEveryPoolItNamesIsAValidPoolParameter()
    {
        var configMap = Manifests.Single<V1ConfigMap>(Manifests.Base, "solar-node-pools");
        var pools = PoolConfig.Parse(Assert.Single(configMap.Data).Value, "solar-node-pools");
        foreach (var name in pools.TmpfsPools.Select(p => p.Name).Concat(pools.LvmPools.Select(p => p.Name))
                     .Concat(pools.DiskPools.Select(p => p.Name)).Concat(pools.PmemPools.Select(p => p.Name)))
            Assert.Equal(name, VolumeParameters.Parse(new Dictionary<string, string> { ["pool"] = name }).Pool);
        // The tmpfs class's pool exists on every node out of the box; the other local media need pools declared.
        Assert.Contains(pools.TmpfsPools, p => p.Name == VolumeParameters.DefaultPool);
    }

    [SkippableFact]
    public void TheExampleStatefulSetClaimsSingleWriterNbdVolumes()
    {
        var sts = Assert.Single(Manifests.Of<V1StatefulSet>(Manifests.Examples));
        Assert.Equal(3, sts.Spec.Replicas);
        var claim = Assert.Single(sts.Spec.VolumeClaimTemplates);
        Assert.Equal(["ReadWriteOnce"], claim.Spec.AccessModes);
        var sc = Manifests.Single<V1StorageClass>(Manifests.StorageClasses, claim.Spec.StorageClassName);
        Assert.Equal(VolumeParameters.NbdMedia, VolumeParameters.Parse(new Dictionary<string, string>(sc.Parameters)).Media);
        Assert.Contains(Container(sts.Spec.Template.Spec, sts.Spec.Template.Spec.Containers[0].Name).VolumeMounts, m => m.Name == claim.Metadata.Name);
    }
}
