using System.Text.RegularExpressions;
using k8s.Models;

namespace SolarCsi.Tests.Deploy;

/// <summary>Reading pod templates the way kubelet would: flags, $(VAR) expansion, volume mounts.</summary>
internal static partial class Workloads
{
    public const string OurImagePrefix = "solar-csi:";
    public const string ControllerBinary = "/solar/solar-controller", NodeBinary = "/solar/solar-node";

    /// <summary>Sample values for the downward API fields our manifests use.</summary>
    public static readonly IReadOnlyDictionary<string, string> FieldSamples = new Dictionary<string, string>
    {
        ["spec.nodeName"] = "node-a",
        ["status.podIP"] = "10.0.0.7",
        ["metadata.name"] = "solar-pod-0",
    };
    public const string SampleClusterIp = "10.96.0.10";

    public sealed record Workload(string Kind, string Namespace, string Name, V1PodSpec Spec);

    public static IEnumerable<Workload> All(IReadOnlyList<object> objects) =>
        objects.OfType<V1Deployment>().Select(d => new Workload("Deployment", d.Metadata.NamespaceProperty, d.Metadata.Name, d.Spec.Template.Spec))
            .Concat(objects.OfType<V1DaemonSet>().Select(d => new Workload("DaemonSet", d.Metadata.NamespaceProperty, d.Metadata.Name, d.Spec.Template.Spec)))
            .Concat(objects.OfType<V1StatefulSet>().Select(d => new Workload("StatefulSet", d.Metadata.NamespaceProperty, d.Metadata.Name, d.Spec.Template.Spec)))
            .Concat(objects.OfType<V1Pod>().Select(p => new Workload("Pod", p.Metadata.NamespaceProperty, p.Metadata.Name, p.Spec)));

    /// <summary>Init containers (native sidecars among them), then the regular containers.</summary>
    public static IEnumerable<V1Container> Containers(V1PodSpec spec) => (spec.InitContainers ?? []).Concat(spec.Containers);

    public static V1Container Container(V1PodSpec spec, string name) =>
        Containers(spec).SingleOrDefault(c => c.Name == name) ?? throw new InvalidDataException($"no container {name}");

    /// <summary>An init container kubelet keeps running beside the others: a native sidecar (Kubernetes 1.29+).</summary>
    public static bool IsNativeSidecar(V1Container c, V1PodSpec spec) =>
        (spec.InitContainers ?? []).Contains(c) && c.RestartPolicy == "Always";

    /// <summary>A workload running one of our plugins, not the node's data-plane host (which serves only a unix socket).</summary>
    public static bool IsPlugin(Workload w) =>
        w.Spec.Containers.Where(IsOurs).All(c => c.Args is not [SolarCsi.Node.DataPlane.DataPlaneHost.Command, ..]);

    public static bool IsOurs(V1Container c) => c.Image.StartsWith(OurImagePrefix, StringComparison.Ordinal);

    /// <summary>The value of <c>--name=value</c> or <c>--name value</c>, the last one if repeated.</summary>
    public static string? Flag(IList<string>? args, string name)
    {
        string? value = null;
        for (var i = 0; args is not null && i < args.Count; i++)
        {
            if (args[i].StartsWith($"--{name}=", StringComparison.Ordinal)) value = args[i][(name.Length + 3)..];
            else if (args[i] == $"--{name}" && i + 1 < args.Count && !args[i + 1].StartsWith("--", StringComparison.Ordinal)) value = args[i + 1];
            else if (args[i] == $"--{name}") value = "true";
        }
        return value;
    }

    /// <summary>
    /// The feature gates an argument list sets, as the sidecars' --feature-gates flag (component-base's MapStringBool)
    /// reads them: comma-separated name=bool pairs, repeated flags adding up, a later value winning.
    /// </summary>
    public static Dictionary<string, bool> FeatureGates(IEnumerable<string>? args)
    {
        var gates = new Dictionary<string, bool>(StringComparer.Ordinal);
        foreach (var arg in (args ?? []).Where(a => a.StartsWith("--feature-gates=", StringComparison.Ordinal)))
            foreach (var pair in arg["--feature-gates=".Length..].Split(',', StringSplitOptions.RemoveEmptyEntries))
            {
                var kv = pair.Split('=', 2);
                gates[kv[0].Trim()] = kv.Length == 2 && bool.TryParse(kv[1].Trim(), out var on)
                    ? on : throw new InvalidDataException($"'{arg}': '{pair}' is not name=true|false");
            }
        return gates;
    }

    /// <summary>The port of a host:port or :port listen address.</summary>
    public static int ListenPort(string address) =>
        int.Parse(address[(address.LastIndexOf(':') + 1)..], System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>Flag names in an argument list written as --name=value (the style of these manifests).</summary>
    public static IEnumerable<string> FlagNames(IEnumerable<string> args) =>
        args.Select(a => a.StartsWith("--", StringComparison.Ordinal) ? a[2..].Split('=')[0] : throw new InvalidDataException($"'{a}' is not a --flag"));

    /// <summary>
    /// The container's environment as kubelet builds it for $(VAR) expansion: its env (values, downward API fields
    /// as samples), then the service variables of every Service in the pod's namespace unless service links are off.
    /// </summary>
    public static Dictionary<string, string> Environment(Workload workload, V1Container container, IReadOnlyList<object> objects)
    {
        var env = new Dictionary<string, string>(StringComparer.Ordinal);
        if (workload.Spec.EnableServiceLinks != false)
            foreach (var service in objects.OfType<V1Service>().Where(s => s.Metadata.NamespaceProperty == workload.Namespace))
            {
                var prefix = service.Metadata.Name.ToUpperInvariant().Replace('-', '_');
                env[$"{prefix}_SERVICE_HOST"] = SampleClusterIp;
                env[$"{prefix}_SERVICE_PORT"] = service.Spec.Ports[0].Port.ToString(System.Globalization.CultureInfo.InvariantCulture);
            }
        foreach (var e in container.Env ?? [])
            env[e.Name] = e.Value ?? (e.ValueFrom?.FieldRef?.FieldPath switch
            {
                "metadata.namespace" => workload.Namespace,
                { } path when FieldSamples.TryGetValue(path, out var sample) => sample,
                var other => throw new InvalidDataException($"{container.Name}: env {e.Name} from '{other}' has no sample value here"),
            });
        return env;
    }

    /// <summary>Expands $(VAR); an undefined variable is an error (kubelet would leave the text as it is).</summary>
    public static string Expand(string text, IReadOnlyDictionary<string, string> env) =>
        VarReference().Replace(text, m => env.TryGetValue(m.Groups[1].Value, out var v)
            ? v : throw new InvalidDataException($"'{text}' refers to $({m.Groups[1].Value}), which the container's environment does not define"));

    [GeneratedRegex(@"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")]
    private static partial Regex VarReference();

    /// <summary>The pod volume and the path inside it that a container path falls in (the longest mount that holds it).</summary>
    public static (string Volume, string RelativePath) Locate(V1Container container, string path)
    {
        var mount = (container.VolumeMounts ?? [])
            .Where(m => path == m.MountPath || path.StartsWith(m.MountPath.TrimEnd('/') + "/", StringComparison.Ordinal))
            .MaxBy(m => m.MountPath.Length) ?? throw new InvalidDataException($"{container.Name}: {path} is on no volume mount");
        return (mount.Name, Path.GetRelativePath(mount.MountPath, path));
    }

    public static V1Volume Volume(V1PodSpec spec, string name) =>
        spec.Volumes.SingleOrDefault(v => v.Name == name) ?? throw new InvalidDataException($"no volume {name}");

    /// <summary>A named or numbered container port.</summary>
    public static int Port(V1Container container, IntOrString port) =>
        int.TryParse(port.Value, out var number) ? number
            : container.Ports?.SingleOrDefault(p => p.Name == port.Value)?.ContainerPort ?? throw new InvalidDataException($"{container.Name} has no port named {port.Value}");

    public static string UnixPath(string endpoint) =>
        endpoint.StartsWith("unix://", StringComparison.Ordinal) ? endpoint["unix://".Length..] : endpoint;
}
