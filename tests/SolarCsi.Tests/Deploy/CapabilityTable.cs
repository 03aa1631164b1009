using k8s.Models;
using static SolarCsi.Tests.Deploy.Rbac;

namespace SolarCsi.Tests.Deploy;

/// <summary>
/// What the install needs for each capability the driver advertises, as read from the pinned sidecars' source (and
/// kubelet's where kubelet is the caller). docs/deploy.md carries the same table, rendered by <see cref="Markdown"/>;
/// CapabilityTests hold every row against the rendered install and the docs against this data.
/// </summary>
internal static class CapabilityTable
{
    /// <param name="Capability">as <see cref="AdvertisedCapabilities"/> names it</param>
    /// <param name="Component">"base", or the deploy/components directory that switches it on</param>
    /// <param name="Sidecars">containers of the install through which the capability reaches the driver; empty when nothing in the install calls it</param>
    /// <param name="Flags">"container --flag[=value]" each; a --feature-gates entry holds when the container's gates, added up, set it true</param>
    /// <param name="Rbac">granted cluster-wide to the controller's ServiceAccount</param>
    /// <param name="RbacInNamespace">granted in the controller's namespace</param>
    /// <param name="Objects">names of <see cref="ObjectChecks"/></param>
    /// <param name="Cluster">what the cluster must bring that the install cannot</param>
    /// <param name="Source">where upstream says so</param>
    public sealed record Row(
        string Capability, string Component, string[] Sidecars, string[] Flags, Rule[] Rbac, Rule[] RbacInNamespace,
        string[] Objects, string MinKubernetes, string Cluster, string Source);

    /// <summary>The Kubernetes version the base install needs: node-driver-registrar as a native sidecar.</summary>
    public const string InstallMinimum = "1.29";

    private const string Base = "base", Snapshots = "snapshots", GroupSnapshots = "group-snapshots", Vac = "volume-attributes-class";
    private static readonly Sidecars.Sidecar P = Sidecars.Provisioner, A = Sidecars.Attacher, R = Sidecars.Resizer, S = Sidecars.Snapshotter, N = Sidecars.Registrar;

    private const string AttachRequired = "CSIDriver attachRequired: true";
    private const string StorageCapacity = "CSIDriver storageCapacity: true";
    private const string ProvisionerPodEnv = "csi-provisioner has NAMESPACE and POD_NAME from the downward API";
    private const string ExpandableClass = "a StorageClass with allowVolumeExpansion: true";
    private const string SnapshotClass = "a VolumeSnapshotClass for the driver";
    private const string GroupSnapshotClass = "a VolumeGroupSnapshotClass for the driver";
    private const string RegistrarOutlivesPlugin = "node-driver-registrar is a native sidecar (restartPolicy: Always) registering solar-node's socket";
    private const string KubeletDirShared = "solar-node mounts /var/lib/kubelet with Bidirectional propagation";

    private static readonly Rule[] AttacherRules =
        [new("storage.k8s.io", "volumeattachments", "get", "list", "watch", "patch"), new("storage.k8s.io", "volumeattachments/status", "patch"), new("", "persistentvolumes", "get", "list", "watch", "patch")];
    private static readonly Rule[] SnapshotterRules =
        [new("snapshot.storage.k8s.io", "volumesnapshotclasses", "get", "list", "watch"), new("snapshot.storage.k8s.io", "volumesnapshotcontents", "get", "list", "watch", "update", "patch"),
         new("snapshot.storage.k8s.io", "volumesnapshotcontents/status", "update", "patch")];
    private static readonly Rule[] GroupSnapshotterRules =
        [new("groupsnapshot.storage.k8s.io", "volumegroupsnapshotclasses", "get", "list", "watch"), new("groupsnapshot.storage.k8s.io", "volumegroupsnapshotcontents", "get", "list", "watch", "update", "patch"),
         new("groupsnapshot.storage.k8s.io", "volumegroupsnapshotcontents/status", "update", "patch")];
    private static readonly Rule[] ResizerRules =
        [new("", "persistentvolumes", "get", "list", "watch", "patch"), new("", "persistentvolumeclaims/status", "patch"), new("", "pods", "get", "list", "watch")];
    private const string SnapshotCluster = "external-snapshotter v8.2.0's snapshot.storage.k8s.io/v1 CRDs and snapshot-controller";
    private const string GroupSnapshotCluster = "external-snapshotter v8.2.0's groupsnapshot.storage.k8s.io/v1beta1 CRDs; snapshot-controller with --feature-gates=CSIVolumeGroupSnapshot=true";
    private const string HealthMonitorOnly = "nothing in this install calls it: only external-health-monitor-controller does, which is not part of it";
    private const string KubeletCalls = "kubelet, which reaches solar-node through the registration";

    public static readonly IReadOnlyList<Row> Rows =
    [
        new("Controller CREATE_DELETE_VOLUME", Base, [P.Container], [],
            [new("", "persistentvolumes", "get", "list", "watch", "create", "patch", "delete"), new("", "persistentvolumeclaims", "get", "list", "watch", "update"), new("storage.k8s.io", "storageclasses", "get", "list", "watch")], [],
            [], P.MinKubernetes, "", P.Cite("deploy/kubernetes/rbac.yaml; README (min K8s)")),
        new("Controller PUBLISH_UNPUBLISH_VOLUME", Base, [A.Container], [],
            [.. AttacherRules, new("storage.k8s.io", "volumeattachments", "get", "list", "watch")], [],
            [AttachRequired], A.MinKubernetes, "", A.Cite(A.MainGo + " supportsControllerCapabilities; deploy/kubernetes/rbac.yaml") + "; " + P.Cite("deploy/kubernetes/rbac.yaml (volumeattachments, for deletes)")),
        new("Controller LIST_VOLUMES", Base, [A.Container], [], AttacherRules, [],
            [], A.MinKubernetes, "", A.Cite(A.MainGo + " supportsControllerCapabilities: with LIST_VOLUMES_PUBLISHED_NODES, the VolumeAttachment reconciler (--reconcile-sync)")),
        new("Controller LIST_VOLUMES_PUBLISHED_NODES", Base, [A.Container], [], AttacherRules, [],
            [], A.MinKubernetes, "", A.Cite(A.MainGo + " supportsControllerCapabilities")),
        new("Controller GET_CAPACITY", Base, [P.Container], [$"{P.Container} --enable-capacity", $"{P.Container} --capacity-ownerref-level=2"], [],
            [new("storage.k8s.io", "csistoragecapacities", "get", "list", "watch", "create", "update", "patch", "delete"), new("", "pods", "get"), new("apps", "replicasets", "get")],
            [StorageCapacity, ProvisionerPodEnv], "1.24", "", P.Cite("README (capacity support); deploy/kubernetes/rbac.yaml (external-provisioner-cfg)") + "; CSIStorageCapacity storage.k8s.io/v1 since Kubernetes 1.24"),
        new("Controller CREATE_DELETE_SNAPSHOT", Snapshots, [S.Container], [],
            [.. SnapshotterRules, new("snapshot.storage.k8s.io", "volumesnapshots", "get", "list")], [],
            [SnapshotClass], S.MinKubernetes, SnapshotCluster, S.Cite(S.MainGo + " (exits unless the driver has CREATE_DELETE_SNAPSHOT); " + S.RbacFile) + "; " + P.Cite("deploy/kubernetes/rbac.yaml (restore from a snapshot)")),
        new("Controller LIST_SNAPSHOTS", Snapshots, [S.Container], [], SnapshotterRules, [],
            [SnapshotClass], S.MinKubernetes, SnapshotCluster, S.Cite("pkg/snapshotter/snapshotter.go GetSnapshotStatus (pre-provisioned snapshots)")),
        new("Controller CLONE_VOLUME", Base, [P.Container], [], [new("", "persistentvolumeclaims", "get", "list", "watch")], [],
            [], P.MinKubernetes, "", P.Cite("pkg/controller/controller.go (a PVC data source needs CLONE_VOLUME); pkg/controller/clone_controller.go")),
        new("Controller PUBLISH_READONLY", Base, [A.Container], [], AttacherRules, [],
            [AttachRequired], A.MinKubernetes, "", A.Cite(A.MainGo + " supportsControllerCapabilities")),
        new("Controller EXPAND_VOLUME", Base, [R.Container], [], ResizerRules, [],
            [ExpandableClass], R.MinKubernetes, "", R.Cite(R.MainGo + "; deploy/kubernetes/rbac.yaml")),
        new("Controller GET_VOLUME", Base, [], [], [], [],
            [], InstallMinimum, HealthMonitorOnly, "no ControllerGetVolume call in the pinned sidecars' cmd/ and pkg/ at their tags"),
        new("Controller SINGLE_NODE_MULTI_WRITER", Base, [P.Container, A.Container, R.Container], [], [], [],
            [], InstallMinimum, "", P.Cite("pkg/controller/controller.go") + "; " + A.Cite(A.MainGo) + "; " + R.Cite("pkg/csi/client.go") + " (ReadWriteOncePod → SINGLE_NODE_SINGLE_WRITER; GA in Kubernetes 1.29)"),
        new("Controller VOLUME_CONDITION", Base, [], [], [], [],
            [], InstallMinimum, HealthMonitorOnly, "no volume_condition read in the pinned sidecars' cmd/ and pkg/ at their tags"),
        new("Controller MODIFY_VOLUME", Vac, [P.Container, R.Container],
            [$"{P.Container} --feature-gates=VolumeAttributesClass=true", $"{R.Container} --feature-gates=VolumeAttributesClass=true"],
            [new("storage.k8s.io", "volumeattributesclasses", "get", "list", "watch"), new("", "persistentvolumeclaims/status", "patch")], [],
            [], "1.31", "an API server serving storage.k8s.io/v1beta1 VolumeAttributesClass (through 1.33: the VolumeAttributesClass feature gate on kube-apiserver and kube-controller-manager, and --runtime-config=storage.k8s.io/v1beta1=true)",
            R.Cite(R.MainGo + " (modify controller only with the gate); pkg/modifycontroller/controller.go (v1beta1 informer); deploy/kubernetes/rbac.yaml") + "; " + P.Cite("pkg/features/features.go (gate off by default); pkg/controller/controller.go (v1beta1 get)")),
        new("GroupController CREATE_DELETE_GET_VOLUME_GROUP_SNAPSHOT", GroupSnapshots, [S.Container], [$"{S.Container} --feature-gates=CSIVolumeGroupSnapshot=true"],
            GroupSnapshotterRules, [],
            [GroupSnapshotClass], "1.27", GroupSnapshotCluster, S.Cite(S.MainGo + "; pkg/features/features.go (gate off by default); " + S.RbacFile + "; README (group snapshots since Kubernetes 1.27)")),
        new("Node STAGE_UNSTAGE_VOLUME", Base, [N.Container], [], [], [],
            [RegistrarOutlivesPlugin, KubeletDirShared], InstallMinimum, KubeletCalls,
            N.Cite("cmd/csi-node-driver-registrar/node_register.go (socket removed on SIGTERM)") + "; kubernetes pkg/kubelet/kuberuntime/kuberuntime_termination_order.go (sidecars stop after the main containers; SidecarContainers on by default since 1.29)"),
        new("Node GET_VOLUME_STATS", Base, [N.Container], [], [], [],
            [RegistrarOutlivesPlugin], InstallMinimum, KubeletCalls, N.Cite("cmd/csi-node-driver-registrar/node_register.go")),
        new("Node EXPAND_VOLUME", Base, [N.Container, R.Container], [], [], [],
            [RegistrarOutlivesPlugin, ExpandableClass], InstallMinimum, KubeletCalls + ", after csi-resizer's ControllerExpandVolume", R.Cite(R.MainGo)),
        new("Node VOLUME_CONDITION", Base, [N.Container], [], [], [],
            [RegistrarOutlivesPlugin], InstallMinimum, "kubelet reads volume_condition only with its CSIVolumeHealth feature gate (alpha, off by default): --feature-gates=CSIVolumeHealth=true on each kubelet",
            "kubernetes pkg/volume/csi/csi_client.go NodeGetVolumeStats"),
        new("Plugin CONTROLLER_SERVICE", Base, [P.Container, A.Container, R.Container], [], [], [],
            [], P.MinKubernetes, "", P.Cite("pkg/controller/controller.go") + "; " + A.Cite(A.MainGo + " supportsPluginControllerService") + "; " + R.Cite("pkg/csi/client.go")),
        new("Plugin GROUP_CONTROLLER_SERVICE", GroupSnapshots, [S.Container], [$"{S.Container} --feature-gates=CSIVolumeGroupSnapshot=true"], GroupSnapshotterRules, [],
            [GroupSnapshotClass], "1.27", GroupSnapshotCluster, S.Cite(S.MainGo + " supportsGroupControllerCreateVolumeGroupSnapshot")),
        new("Plugin VOLUME_ACCESSIBILITY_CONSTRAINTS", Base, [P.Container], [$"{P.Container} --feature-gates=Topology=true", $"{P.Container} --strict-topology"],
            [new("storage.k8s.io", "csinodes", "get", "list", "watch"), new("", "nodes", "get", "list", "watch")], [],
            [], P.MinKubernetes, "", P.Cite("pkg/controller/topology.go; pkg/features/features.go (Topology GA); deploy/kubernetes/rbac.yaml")),
        new("Plugin VolumeExpansion ONLINE", Base, [R.Container, N.Container], [], ResizerRules, [],
            [ExpandableClass], InstallMinimum, KubeletCalls + " (NodeExpandVolume on the mounted volume)", R.Cite("pkg/resizer/csi_resizer.go (expands volumes in use; no check of the expansion type)")),
    ];

    /// <summary>Checks on the rendered install that a row can name; each returns what is wrong, or null.</summary>
    public static readonly IReadOnlyDictionary<string, Func<IReadOnlyList<object>, string?>> ObjectChecks = new Dictionary<string, Func<IReadOnlyList<object>, string?>>
    {
        [AttachRequired] = o => o.OfType<V1CSIDriver>().SingleOrDefault()?.Spec.AttachRequired == true ? null : "the CSIDriver does not require attach",
        [StorageCapacity] = o => o.OfType<V1CSIDriver>().SingleOrDefault()?.Spec.StorageCapacity == true ? null : "the CSIDriver does not publish storage capacity",
        [ProvisionerPodEnv] = o =>
        {
            var env = Workloads.All(o).SelectMany(w => Workloads.Containers(w.Spec)).Single(c => c.Name == Sidecars.Provisioner.Container).Env ?? [];
            return env.Any(e => e is { Name: "NAMESPACE", ValueFrom.FieldRef.FieldPath: "metadata.namespace" })
                && env.Any(e => e is { Name: "POD_NAME", ValueFrom.FieldRef.FieldPath: "metadata.name" }) ? null : "csi-provisioner lacks NAMESPACE or POD_NAME";
        },
        [ExpandableClass] = o => o.OfType<V1StorageClass>().Any(sc => sc.AllowVolumeExpansion == true) ? null : "no StorageClass allows expansion",
        [SnapshotClass] = o => o.OfType<VolumeSnapshotClass>().Any(c => c.Driver == DriverName(o)) ? null : "no VolumeSnapshotClass names the driver",
        [GroupSnapshotClass] = o => o.OfType<VolumeGroupSnapshotClass>().Any(c => c.Driver == DriverName(o)) ? null : "no VolumeGroupSnapshotClass names the driver",
        [RegistrarOutlivesPlugin] = o =>
        {
            var node = Workloads.All(o).Single(w => w is { Kind: "DaemonSet", Name: "solar-node" });
            var registrar = Workloads.Containers(node.Spec).Single(c => c.Name == Sidecars.Registrar.Container);
            if (!Workloads.IsNativeSidecar(registrar, node.Spec)) return "node-driver-registrar is not a native sidecar: kubelet stops it with solar-node, not after it";
            var plugin = node.Spec.Containers.Single(Workloads.IsOurs);
            var socket = Workloads.Locate(plugin, Workloads.UnixPath(Workloads.Flag(plugin.Args, "endpoint")!));
            var hostSocket = Path.Combine(Workloads.Volume(node.Spec, socket.Volume).HostPath.Path, socket.RelativePath);
            return Workloads.Flag(registrar.Args, "kubelet-registration-path") == hostSocket ? null : $"the registrar registers another socket than {hostSocket}";
        },
        [KubeletDirShared] = o =>
        {
            var node = Workloads.All(o).Single(w => w is { Kind: "DaemonSet", Name: "solar-node" });
            return node.Spec.Containers.Single(Workloads.IsOurs).VolumeMounts.Any(m => m is { MountPath: "/var/lib/kubelet", MountPropagation: "Bidirectional" })
                ? null : "solar-node does not share /var/lib/kubelet both ways";
        },
    };

    private static string DriverName(IReadOnlyList<object> objects) => objects.OfType<V1CSIDriver>().Single().Metadata.Name;

    public const string BeginMarker = "<!-- capability-table: generated from tests/SolarCsi.Tests/Deploy/CapabilityTable.cs; CapabilityTests fail when they differ -->";
    public const string EndMarker = "<!-- /capability-table -->";

    /// <summary>The table as docs/deploy.md carries it.</summary>
    public static string Markdown()
    {
        var lines = new List<string>
        {
            "| capability | switched on by | sidecars | flags and objects | RBAC (controller ServiceAccount) | min Kubernetes | the cluster must bring | read from |",
            "|---|---|---|---|---|---|---|---|",
        };
        foreach (var r in Rows)
        {
            var rbac = r.Rbac.Select(x => x.ToString()).Concat(r.RbacInNamespace.Select(x => $"{x} (namespace)"));
            lines.Add("| " + string.Join(" | ",
                $"`{r.Capability}`",
                r.Component == Base ? "base" : $"`components/{r.Component}`",
                r.Sidecars.Length == 0 ? "—" : string.Join(", ", r.Sidecars),
                Cell(r.Flags.Select(f => $"`{f}`").Concat(r.Objects)),
                Cell(rbac),
                r.MinKubernetes,
                r.Cluster.Length == 0 ? "—" : r.Cluster,
                r.Source) + " |");
        }
        return string.Join('\n', lines);
    }

    private static string Cell(IEnumerable<string> items)
    {
        var list = items.ToList();
        return list.Count == 0 ? "—" : string.Join("; ", list);
    }
}
