using static SolarCsi.Tests.Deploy.Rbac;

namespace SolarCsi.Tests.Deploy;

/// <summary>
/// The upstream sidecars at the versions deploy/ pins, as their own source at that tag defines them: the flags
/// main.go registers (flag.String/Bool/Int/Duration/… and flag.Var; plus klog's -v), the feature gates
/// pkg/features declares, flags that exclude each other, the rules of deploy/kubernetes/rbac.yaml without its
/// commented-out optional ones, and the README's minimum Kubernetes version. Read from the kubernetes-csi
/// repositories at these tags; bumping a sidecar means reading them again and changing this file with the manifests.
/// </summary>
internal static class Sidecars
{
    public const string Registry = "registry.k8s.io/sig-storage";

    public sealed record Sidecar(
        string Container, string Image, string Version, string Repository, string MainGo,
        string[] Flags, string[] FeatureGates, string[][] Exclusive, Rule[] UpstreamRbac, string? RbacFile,
        string? ClusterRole, string MinKubernetes)
    {
        public string PinnedImage => $"{Registry}/{Image}:{Version}";
        public string Cite(string path) => $"{Repository} {Version} {path}";
    }

    private static readonly string[] LeaderElection =
        ["leader-election", "leader-election-namespace", "leader-election-lease-duration", "leader-election-renew-deadline", "leader-election-retry-period"];

    public static readonly Sidecar Provisioner = new(
        "csi-provisioner", "csi-provisioner", "v5.2.0", "kubernetes-csi/external-provisioner", "cmd/csi-provisioner/csi-provisioner.go",
        ["capacity-for-immediate-binding", "capacity-ownerref-level", "capacity-poll-interval", "capacity-threads", "cloning-protection-threads",
         "controller-publish-readonly", "csi-address", "default-fstype", "enable-capacity", "enable-pprof", "extra-create-metadata", "feature-gates",
         "http-endpoint", "immediate-topology", "kube-api-burst", "kube-api-capacity-burst", "kube-api-capacity-qps", "kube-api-qps", "kubeconfig",
         .. LeaderElection, "master", "metrics-address", "metrics-path", "node-deployment", "node-deployment-base-delay",
         "node-deployment-immediate-binding", "node-deployment-max-delay", "prevent-volume-mode-conversion", "retry-interval-max",
         "retry-interval-start", "strict-topology", "timeout", "version", "volume-name-prefix", "volume-name-uuid-length", "worker-threads", "v"],
        ["Topology", "HonorPVReclaimPolicy", "CrossNamespaceVolumeDataSource", "VolumeAttributesClass"],
        [["metrics-address", "http-endpoint"]],
        [new("", "persistentvolumes", "get", "list", "watch", "create", "patch", "delete"),
         new("", "persistentvolumeclaims", "get", "list", "watch", "update"),
         new("storage.k8s.io", "storageclasses", "get", "list", "watch"),
         new("", "events", "list", "watch", "create", "update", "patch"),
         new("snapshot.storage.k8s.io", "volumesnapshots", "get", "list"),
         new("snapshot.storage.k8s.io", "volumesnapshotcontents", "get", "list"),
         new("storage.k8s.io", "csinodes", "get", "list", "watch"),
         new("", "nodes", "get", "list", "watch"),
         new("storage.k8s.io", "volumeattachments", "get", "list", "watch")],
        "deploy/kubernetes/rbac.yaml", "solar-csi-external-provisioner-runner", "1.20");

    public static readonly Sidecar Attacher = new(
        "csi-attacher", "csi-attacher", "v4.8.0", "kubernetes-csi/external-attacher", "cmd/csi-attacher/main.go",
        ["csi-address", "default-fstype", "http-endpoint", "kube-api-burst", "kube-api-qps", "kubeconfig", .. LeaderElection, "max-entries",
         "max-grpc-log-length", "metrics-address", "metrics-path", "reconcile-sync", "resync", "retry-interval-max", "retry-interval-start",
         "timeout", "version", "worker-threads", "v"],
        [],
        [["metrics-address", "http-endpoint"]],
        [new("", "persistentvolumes", "get", "list", "watch", "patch"),
         new("storage.k8s.io", "csinodes", "get", "list", "watch"),
         new("storage.k8s.io", "volumeattachments", "get", "list", "watch", "patch"),
         new("storage.k8s.io", "volumeattachments/status", "patch")],
        "deploy/kubernetes/rbac.yaml", "solar-csi-external-attacher-runner", "1.17");

    public static readonly Sidecar Resizer = new(
        "csi-resizer", "csi-resizer", "v1.13.1", "kubernetes-csi/external-resizer", "cmd/csi-resizer/main.go",
        ["csi-address", "extra-modify-metadata", "feature-gates", "handle-volume-inuse-error", "http-endpoint", "kube-api-burst", "kube-api-qps",
         "kubeconfig", .. LeaderElection, "master", "metrics-address", "metrics-path", "resync-period", "retry-interval-max",
         "retry-interval-start", "timeout", "version", "workers", "v"],
        ["AnnotateFsResize", "RecoverVolumeExpansionFailure", "VolumeAttributesClass"],
        [["metrics-address", "http-endpoint"]],
        [new("", "persistentvolumes", "get", "list", "watch", "patch"),
         new("", "persistentvolumeclaims", "get", "list", "watch"),
         new("", "pods", "get", "list", "watch"),
         new("", "persistentvolumeclaims/status", "patch"),
         new("", "events", "list", "watch", "create", "update", "patch"),
         new("storage.k8s.io", "volumeattributesclasses", "get", "list", "watch")],
        "deploy/kubernetes/rbac.yaml", "solar-csi-external-resizer-runner", "1.16");

    public static readonly Sidecar Snapshotter = new(
        "csi-snapshotter", "csi-snapshotter", "v8.2.0", "kubernetes-csi/external-snapshotter", "cmd/csi-snapshotter/main.go",
        ["csi-address", "extra-create-metadata", "feature-gates", "groupsnapshot-name-prefix", "groupsnapshot-name-uuid-length", "http-endpoint",
         "kube-api-burst", "kube-api-qps", "kubeconfig", .. LeaderElection, "metrics-address", "metrics-path", "node-deployment",
         "resync-period", "retry-interval-max", "retry-interval-start", "snapshot-name-prefix", "snapshot-name-uuid-length", "timeout",
         "version", "worker-threads", "v"],
        ["CSIVolumeGroupSnapshot"],
        [["metrics-address", "http-endpoint"]],
        [new("", "events", "list", "watch", "create", "update", "patch"),
         new("snapshot.storage.k8s.io", "volumesnapshotclasses", "get", "list", "watch"),
         new("snapshot.storage.k8s.io", "volumesnapshotcontents", "get", "list", "watch", "update", "patch"),
         new("snapshot.storage.k8s.io", "volumesnapshotcontents/status", "update", "patch"),
         new("groupsnapshot.storage.k8s.io", "volumegroupsnapshotclasses", "get", "list", "watch"),
         new("groupsnapshot.storage.k8s.io", "volumegroupsnapshotcontents", "get", "list", "watch", "update", "patch"),
         new("groupsnapshot.storage.k8s.io", "volumegroupsnapshotcontents/status", "update", "patch")],
        "deploy/kubernetes/csi-snapshotter/rbac-csi-snapshotter.yaml", "solar-csi-external-snapshotter-runner", "1.20");

    public static readonly Sidecar Registrar = new(
        "node-driver-registrar", "csi-node-driver-registrar", "v2.13.0", "kubernetes-csi/node-driver-registrar", "cmd/csi-node-driver-registrar/main.go",
        ["connection-timeout", "csi-address", "enable-pprof", "health-port", "http-endpoint", "kubelet-registration-path", "mode",
         "plugin-registration-path", "timeout", "version", "v"],
        [],
        [["health-port", "http-endpoint"]],
        [], null, null, "1.13");

    public static readonly Sidecar Livenessprobe = new(
        "liveness-probe", "livenessprobe", "v2.15.0", "kubernetes-csi/livenessprobe", "cmd/livenessprobe/main.go",
        ["csi-address", "health-port", "http-endpoint", "metrics-address", "metrics-path", "probe-timeout", "v"],
        [],
        [["health-port", "http-endpoint"], ["metrics-address", "http-endpoint"]],
        [], null, null, "1.13");

    public static readonly IReadOnlyList<Sidecar> All = [Provisioner, Attacher, Resizer, Snapshotter, Registrar, Livenessprobe];

    public static Sidecar ByContainer(string name) =>
        All.SingleOrDefault(s => s.Container == name) ?? throw new InvalidDataException($"container {name} is no pinned sidecar");

    /// <summary>
    /// The flag that serves an HTTP endpoint (probes, /healthz) in each sidecar that has one, and the path kubelet
    /// may probe there: registrar cmd/csi-node-driver-registrar/node_register.go httpServer (/healthz: the
    /// registration socket exists and answers GetInfo with the driver's name); livenessprobe cmd/livenessprobe/main.go
    /// (/healthz: the driver's CSI Probe).
    /// </summary>
    public static readonly IReadOnlyDictionary<string, string> HealthEndpointFlag = new Dictionary<string, string>
    {
        [Registrar.Container] = "http-endpoint",
        [Livenessprobe.Container] = "http-endpoint",
    };

    /// <summary>
    /// node-driver-registrar's registration socket: <c>{--plugin-registration-path}/{driver}-reg.sock</c>
    /// (node_register.go buildSocketPath), created when the registrar starts serving and removed when it gets
    /// SIGTERM (removeRegSocket), after which kubelet's plugin watcher deregisters the driver.
    /// </summary>
    public static string RegistrationSocket(IList<string> registrarArgs, string driverName) =>
        $"{Workloads.Flag(registrarArgs, "plugin-registration-path") ?? "/registration"}/{driverName}-reg.sock";
}
