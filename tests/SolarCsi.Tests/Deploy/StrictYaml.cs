using System.Reflection;
using k8s;
using k8s.Models;
using YamlDotNet.RepresentationModel;

namespace SolarCsi.Tests.Deploy;

/// <summary>
/// Parses multi-document YAML into the KubernetesClient object model strictly: <c>KubernetesYaml.LoadAllFromString(…,
/// strict: true)</c> builds its deserializer without <c>IgnoreUnmatchedProperties</c> and with duplicate-key checking,
/// so an unknown or misspelt field anywhere in a document, or a key given twice, is an exception. A document whose
/// apiVersion/kind the model does not know is refused here by name, unless it is one of the custom resources below,
/// which are read into hand-written schema types (also strictly) and checked by them.
/// </summary>
internal static class StrictYaml
{
    /// <summary>apiVersion/kind → model type, built the way KubernetesYaml builds its own map.</summary>
    public static readonly IReadOnlyDictionary<string, Type> ModelKinds = typeof(KubernetesEntityAttribute).Assembly.GetTypes()
        .Select(t => (Type: t, Entity: t.GetCustomAttribute<KubernetesEntityAttribute>()))
        .Where(x => x.Entity is not null)
        .ToDictionary(x => KeyOf(x.Entity!.Group, x.Entity.ApiVersion, x.Entity.Kind), x => x.Type);

    /// <summary>Custom resources the model does not define, each with its schema type.</summary>
    public static readonly IReadOnlyDictionary<string, Type> CustomKinds = new Dictionary<string, Type>
    {
        ["snapshot.storage.k8s.io/v1/VolumeSnapshotClass"] = typeof(VolumeSnapshotClass),
        ["groupsnapshot.storage.k8s.io/v1beta1/VolumeGroupSnapshotClass"] = typeof(VolumeGroupSnapshotClass),
    };

    private static string KeyOf(string? group, string version, string kind) =>
        string.IsNullOrEmpty(group) ? $"{version}/{kind}" : $"{group}/{version}/{kind}";

    public static IReadOnlyList<object> Parse(string yaml)
    {
        var stream = new YamlStream();
        stream.Load(new StringReader(yaml));
        var index = 0;
        foreach (var document in stream.Documents)
        {
            index++;
            if (document.RootNode is not YamlMappingNode root) throw new InvalidDataException($"document {index} is not a mapping");
            var apiVersion = Scalar(root, "apiVersion") ?? throw new InvalidDataException($"document {index} has no apiVersion");
            var kind = Scalar(root, "kind") ?? throw new InvalidDataException($"document {index} has no kind");
            var name = root.Children.TryGetValue(new YamlScalarNode("metadata"), out var m) && m is YamlMappingNode meta ? Scalar(meta, "name") : null;
            var key = $"{apiVersion}/{kind}";
            if (!ModelKinds.ContainsKey(key) && !CustomKinds.ContainsKey(key))
                throw new InvalidDataException($"document {index} ({kind} {name}): '{key}' is neither in the KubernetesClient model nor a custom resource with a schema here");
        }

        var objects = KubernetesYaml.LoadAllFromString(yaml, CustomKinds.ToDictionary(), strict: true);
        if (objects.Count != stream.Documents.Count) throw new InvalidDataException($"{stream.Documents.Count} documents but {objects.Count} objects");
        foreach (var custom in objects.OfType<ICustomResourceSchema>()) custom.Validate();
        return objects;
    }

    private static string? Scalar(YamlMappingNode node, string key) =>
        node.Children.TryGetValue(new YamlScalarNode(key), out var value) && value is YamlScalarNode scalar ? scalar.Value : null;
}

/// <summary>What a hand-written custom resource type checks beyond strict field names.</summary>
public interface ICustomResourceSchema
{
    void Validate();
}

/// <summary>
/// The shape external-snapshotter v8.2.0's CRDs give both snapshot class kinds: top-level <c>driver</c>
/// (required), <c>deletionPolicy</c> (required: Delete or Retain) and <c>parameters</c> (string map); no
/// <c>spec</c>. Unknown fields fail the strict deserializer.
/// </summary>
public abstract class SnapshotClassSchema : IKubernetesObject<V1ObjectMeta>, ICustomResourceSchema
{
    public string ApiVersion { get; set; } = "";
    public string Kind { get; set; } = "";
    public V1ObjectMeta Metadata { get; set; } = new();
    public string? Driver { get; set; }
    public string? DeletionPolicy { get; set; }
    public Dictionary<string, string>? Parameters { get; set; }

    public void Validate()
    {
        var kind = GetType().Name;
        if (string.IsNullOrEmpty(Metadata.Name)) throw new InvalidDataException($"{kind} without metadata.name");
        if (string.IsNullOrEmpty(Driver)) throw new InvalidDataException($"{kind} {Metadata.Name}: driver is required");
        if (DeletionPolicy is not ("Delete" or "Retain"))
            throw new InvalidDataException($"{kind} {Metadata.Name}: deletionPolicy must be Delete or Retain, not '{DeletionPolicy}'");
    }
}

/// <summary>snapshot.storage.k8s.io/v1 VolumeSnapshotClass (client/config/crd/snapshot.storage.k8s.io_volumesnapshotclasses.yaml).</summary>
public sealed class VolumeSnapshotClass : SnapshotClassSchema;

/// <summary>groupsnapshot.storage.k8s.io/v1beta1 VolumeGroupSnapshotClass (client/config/crd/groupsnapshot.storage.k8s.io_volumegroupsnapshotclasses.yaml).</summary>
public sealed class VolumeGroupSnapshotClass : SnapshotClassSchema;
