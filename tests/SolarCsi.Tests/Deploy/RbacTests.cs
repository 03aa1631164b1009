using k8s.Models;
using static SolarCsi.Tests.Deploy.Rbac;

namespace SolarCsi.Tests.Deploy;

/// <summary>ServiceAccounts, bindings and roles fit together, and the sidecars get what their flags need.</summary>
public sealed class RbacTests
{
    private static IReadOnlyList<object> All => Manifests.Objects(Manifests.Top);

    private static IEnumerable<(Subject Subject, V1RoleRef Role, string? BindingNamespace)> Bindings() => Rbac.Bindings(All);

    [SkippableFact]
    public void EveryWorkloadServiceAccountIsBoundAndEveryBoundAccountIsUsed()
    {
        var accounts = Manifests.Of<V1ServiceAccount>(Manifests.Top).ToDictionary(a => new Subject(a.Metadata.NamespaceProperty, a.Metadata.Name));
        var bound = Bindings().Select(b => b.Subject).ToHashSet();
        var used = new HashSet<Subject>();
        foreach (var w in Workloads.All(All))
        {
            var subject = new Subject(w.Namespace, w.Spec.ServiceAccountName ?? "default");
            Assert.True(accounts.TryGetValue(subject, out var account), $"{w.Kind} {w.Name} runs as {subject}, which is not defined here");
            used.Add(subject);
            // A pod without a token cannot use a binding; one with a token must have what it needs bound.
            var token = w.Spec.AutomountServiceAccountToken ?? account.AutomountServiceAccountToken ?? true;
            Assert.True(token == bound.Contains(subject),
                token ? $"{w.Kind} {w.Name} mounts a token for {subject}, which no binding grants anything"
                      : $"{subject} is bound, but {w.Kind} {w.Name} mounts no token to use it");
        }
        Assert.All(bound, s => Assert.True(used.Contains(s), $"{s} is bound but no workload runs as it"));
        Assert.All(accounts.Keys, s => Assert.True(used.Contains(s), $"{s} is defined but no workload runs as it"));
    }

    [SkippableFact]
    public void EveryBindingNamesARoleThatExists()
    {
        var clusterRoles = Manifests.Of<V1ClusterRole>(Manifests.Top).Select(r => r.Metadata.Name).ToHashSet();
        var roles = Manifests.Of<V1Role>(Manifests.Top).Select(r => (r.Metadata.NamespaceProperty, r.Metadata.Name)).ToHashSet();
        foreach (var (subject, role, ns) in Bindings())
            Assert.True(role.Kind == "ClusterRole" ? clusterRoles.Contains(role.Name) : roles.Contains((ns!, role.Name)),
                $"{subject} is bound to missing {role.Kind} {role.Name}");
    }

    private static HashSet<string> Granted(Subject subject, string apiGroup, string resource, string? inNamespace) =>
        Rbac.Granted(All, subject, apiGroup, resource, inNamespace);

    [SkippableFact]
    public void TheControllerMayDoWhatItsSidecarsFlagsAsk()
    {
        var controller = Workloads.All(All).Single(w => w.Name == "solar-controller");
        var subject = new Subject(controller.Namespace, controller.Spec.ServiceAccountName);
        void Has(string group, string resource, string? ns, params string[] verbs) =>
            Assert.True(Granted(subject, group, resource, ns).IsSupersetOf(verbs), $"{subject} lacks {string.Join(',', verbs)} on {group}/{resource} in {ns ?? "the cluster"}");

        // --leader-election on the sidecars: leases in their own namespace.
        Has("coordination.k8s.io", "leases", controller.Namespace, "get", "watch", "list", "delete", "update", "create");
        // --enable-capacity with --capacity-ownerref-level=2: CSIStorageCapacity objects, and the way up to the Deployment.
        Has("storage.k8s.io", "csistoragecapacities", controller.Namespace, "get", "list", "watch", "create", "update", "patch", "delete");
        Has("", "pods", controller.Namespace, "get");
        Has("apps", "replicasets", controller.Namespace, "get");
        // The core of each sidecar's job.
        Has("", "persistentvolumes", null, "create", "delete");
        Has("storage.k8s.io", "volumeattachments", null, "patch");
        Has("storage.k8s.io", "volumeattachments/status", null, "patch");
        Has("", "persistentvolumeclaims/status", null, "patch");
        Has("snapshot.storage.k8s.io", "volumesnapshotcontents/status", null, "update", "patch");
        Has("storage.k8s.io", "csinodes", null, "get", "list", "watch");
        // Nothing here needs secrets: no StorageClass or snapshot class names one.
        Assert.Empty(Granted(subject, "", "secrets", controller.Namespace));
        Assert.All(Manifests.Of<V1StorageClass>(Manifests.Top), sc => Assert.DoesNotContain(sc.Parameters.Keys, k => k.Contains("secret", StringComparison.Ordinal)));
    }
}
