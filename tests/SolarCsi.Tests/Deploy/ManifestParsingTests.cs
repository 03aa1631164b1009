using k8s;
using k8s.Models;

namespace SolarCsi.Tests.Deploy;

/// <summary>Every deploy/ kustomization renders offline and every document parses strictly into a known kind.</summary>
public sealed class ManifestParsingTests
{
    public static TheoryData<string> Kustomizations => new(Manifests.All);

    [SkippableTheory]
    [MemberData(nameof(Kustomizations))]
    public void RendersAndEveryDocumentParsesStrictly(string kustomization)
    {
        var objects = Manifests.Objects(kustomization);
        Assert.NotEmpty(objects);
        foreach (var o in objects.Cast<IKubernetesObject<V1ObjectMeta>>())
        {
            Assert.False(string.IsNullOrEmpty(o.Metadata?.Name), $"a {o.Kind} without a name in deploy/{kustomization}");
            // Namespaced kinds carry their namespace in the file: nothing depends on the namespace kubectl defaults to.
            if (o is not (V1Namespace or V1CSIDriver or V1StorageClass or V1ClusterRole or V1ClusterRoleBinding or SnapshotClassSchema))
                Assert.False(string.IsNullOrEmpty(o.Metadata.NamespaceProperty), $"{o.Kind} {o.Metadata.Name} has no namespace");
        }
    }

    [SkippableFact]
    public void TheTopLevelKustomizationHoldsBaseAndStorageClassesAndEverythingHoldsTheTopLevel()
    {
        static HashSet<string> Keys(string k) => Manifests.Objects(k).Cast<IKubernetesObject<V1ObjectMeta>>()
            .Select(o => $"{o.ApiVersion}/{o.Kind} {o.Metadata.NamespaceProperty}/{o.Metadata.Name}").ToHashSet();
        Assert.Subset(Keys(Manifests.Top), Keys(Manifests.Base));
        Assert.Subset(Keys(Manifests.Top), Keys(Manifests.StorageClasses));
        Assert.Subset(Keys(Manifests.Everything), Keys(Manifests.Top));
        Assert.Empty(Manifests.Of<V1StatefulSet>(Manifests.Top));
    }

    [SkippableFact]
    public void DriverObjectsLiveInTheSolarCsiNamespace()
    {
        var ns = Assert.Single(Manifests.Of<V1Namespace>(Manifests.Base)).Metadata.Name;
        Assert.Equal("solar-csi", ns);
        foreach (var o in Manifests.Objects(Manifests.Base).Cast<IKubernetesObject<V1ObjectMeta>>().Where(o => o.Metadata.NamespaceProperty is not null))
            Assert.Equal(ns, o.Metadata.NamespaceProperty);
    }

    // The parser itself must be able to fail: these are the mistakes it exists to catch.
    [Theory]
    [InlineData("apiVersion: apps/v1\nkind: Deployment\nmetadata: { name: x }\nspec:\n  replica: 1\n", "replica")]
    [InlineData("apiVersion: v1\nkind: Pod\nmetadata: { name: x }\nspec:\n  containers:\n    - name: c\n      image: i\n      volumeMounts:\n        - { name: v, mountPath: /v, mountPropagaton: Bidirectional }\n", "mountPropagaton")]
    [InlineData("apiVersion: v1\nkind: ConfigMap\nmetadata: { name: x }\ndata: { a: b }\ndata: { c: d }\n", "data")]
    [InlineData("apiVersion: example.com/v1\nkind: Widget\nmetadata: { name: x }\n", "example.com/v1/Widget")]
    [InlineData("apiVersion: storage.k8s.io/v1beta1\nkind: CSIDriver\nmetadata: { name: x }\n", "storage.k8s.io/v1beta1/CSIDriver")]
    [InlineData("apiVersion: snapshot.storage.k8s.io/v1\nkind: VolumeSnapshotClass\nmetadata: { name: x }\ndriver: d\ndeletionPolicy: Delete\nspec: {}\n", "spec")]
    [InlineData("apiVersion: snapshot.storage.k8s.io/v1\nkind: VolumeSnapshotClass\nmetadata: { name: x }\ndeletionPolicy: Delete\n", "driver is required")]
    [InlineData("apiVersion: snapshot.storage.k8s.io/v1\nkind: VolumeSnapshotClass\nmetadata: { name: x }\ndriver: d\ndeletionPolicy: Keep\n", "deletionPolicy")]
    public void StrictParsingRefusesUnknownFieldsDuplicateKeysAndUnknownKinds(string yaml, string named)
    {
        var error = Assert.ThrowsAny<Exception>(() => StrictYaml.Parse("---\n" + yaml));
        Assert.Contains(named, error.ToString());
    }

    [Fact]
    public void StrictParsingAcceptsAWellFormedSnapshotClassAndModelKinds()
    {
        var objects = StrictYaml.Parse("""
            apiVersion: snapshot.storage.k8s.io/v1
            kind: VolumeSnapshotClass
            metadata: { name: s }
            driver: solar.csi.dev
            deletionPolicy: Retain
            parameters: { a: b }
            ---
            apiVersion: v1
            kind: ConfigMap
            metadata: { name: c, namespace: n }
            data: { k: v }
            """);
        Assert.Equal("solar.csi.dev", Assert.IsType<VolumeSnapshotClass>(objects[0]).Driver);
        Assert.Equal("v", Assert.IsType<V1ConfigMap>(objects[1]).Data["k"]);
    }
}
