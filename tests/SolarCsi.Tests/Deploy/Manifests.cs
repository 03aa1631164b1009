using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text.RegularExpressions;
using k8s;
using k8s.Models;

namespace SolarCsi.Tests.Deploy;

/// <summary>
/// The deploy/ kustomizations, rendered by <c>kubectl kustomize</c> (offline) and parsed by <see cref="StrictYaml"/>.
/// Renders are cached: each kustomization is rendered once per test run. The optional components are rendered the
/// way an operator switches them on: an overlay of deploy/ that lists them (<see cref="WithComponents"/>), which
/// kustomize itself applies — the tests patch nothing.
/// </summary>
internal static partial class Manifests
{
    public const string Top = ".", Base = "base", StorageClasses = "storageclasses", Examples = "examples";
    private const string OverlayPrefix = "deploy+";

    // Static initialisers run in this order: the repository first, then what is read from it.
    public static string RepoRoot { get; } = FindRepoRoot();

    /// <summary>The components deploy/kustomization.yaml does not include: each needs more of the cluster.</summary>
    public static IReadOnlyList<string> OptInComponents => AllComponents.Except(DefaultComponents).ToArray();

    /// <summary>deploy/ with every optional component switched on: what the capability table is held against.</summary>
    public static string Everything => WithComponents([.. OptInComponents]);

    /// <summary>Every directory under deploy/components, by name.</summary>
    public static IReadOnlyList<string> AllComponents { get; } = Directory.GetDirectories(DeployPath("components"))
        .Select(d => Path.GetFileName(d)!).Order(StringComparer.Ordinal).ToArray();

    /// <summary>The components deploy/kustomization.yaml lists, by name.</summary>
    public static IReadOnlyList<string> DefaultComponents { get; } = ReadComponents(DeployPath("kustomization.yaml"));

    /// <summary>A kustomization key for deploy/ plus these components of deploy/components, in this order.</summary>
    public static string WithComponents(params string[] components) => OverlayPrefix + string.Join('+', components);

    public static readonly string[] All = [Top, Base, StorageClasses, Examples, Everything];

    public static string DeployPath(string relative) => Path.GetFullPath(Path.Combine(RepoRoot, "deploy", relative));

    private static readonly Lazy<string?> KubectlProblem = new(FindKubectlProblem);
    private static readonly ConcurrentDictionary<string, Lazy<string>> Rendered = new();
    private static readonly ConcurrentDictionary<string, Lazy<IReadOnlyList<object>>> Parsed = new();

    /// <summary>Skips the calling [SkippableFact] when this machine cannot render kustomizations, saying why.</summary>
    public static void RequireKubectl() => Skip.If(KubectlProblem.Value is not null, KubectlProblem.Value);

    public static string Render(string kustomization)
    {
        RequireKubectl();
        return Rendered.GetOrAdd(kustomization, k => new Lazy<string>(() => k.StartsWith(OverlayPrefix, StringComparison.Ordinal)
            ? RenderOverlay(["."], k[OverlayPrefix.Length..].Split('+', StringSplitOptions.RemoveEmptyEntries))
            : Kubectl("kustomize", DeployPath(k)))).Value;
    }

    /// <summary>
    /// Renders an overlay in a temporary directory whose kustomization lists these deploy/ directories as resources
    /// and these deploy/components as components, by relative path, as an operator's own overlay would.
    /// </summary>
    public static string RenderOverlay(IEnumerable<string> resources, IEnumerable<string> components)
    {
        RequireKubectl();
        using var dir = new TempDir();
        string Relative(string deployRelative) => Path.GetRelativePath(dir.Path, DeployPath(deployRelative));
        var text = new System.Text.StringBuilder("apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n");
        foreach (var r in resources) text.Append("  - ").Append(Relative(r)).Append('\n');
        text.Append("components:").Append(components.Any() ? "\n" : " []\n");
        foreach (var c in components) text.Append("  - ").Append(Relative(Path.Combine("components", c))).Append('\n');
        File.WriteAllText(Path.Combine(dir.Path, "kustomization.yaml"), text.ToString());
        return Kubectl("kustomize", dir.Path);
    }

    private static string[] ReadComponents(string kustomizationFile)
    {
        var stream = new YamlDotNet.RepresentationModel.YamlStream();
        stream.Load(new StringReader(File.ReadAllText(kustomizationFile)));
        var root = (YamlDotNet.RepresentationModel.YamlMappingNode)stream.Documents[0].RootNode;
        return root.Children.TryGetValue(new YamlDotNet.RepresentationModel.YamlScalarNode("components"), out var list)
            ? ((YamlDotNet.RepresentationModel.YamlSequenceNode)list).Children.Select(c => Path.GetFileName(((YamlDotNet.RepresentationModel.YamlScalarNode)c).Value!)).ToArray()
            : [];
    }

    public static IReadOnlyList<object> Objects(string kustomization) =>
        Parsed.GetOrAdd(kustomization, k => new Lazy<IReadOnlyList<object>>(() => StrictYaml.Parse(Render(k)))).Value;

    public static IEnumerable<T> Of<T>(string kustomization) => Objects(kustomization).OfType<T>();

    public static T Single<T>(string kustomization, string name) where T : IKubernetesObject<V1ObjectMeta> =>
        Of<T>(kustomization).SingleOrDefault(o => o.Metadata.Name == name) ?? throw new InvalidDataException($"no {typeof(T).Name} named {name} in deploy/{kustomization}");

    public static string Kubectl(params string[] args)
    {
        var start = new ProcessStartInfo("kubectl") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) start.ArgumentList.Add(a);
        using var process = Process.Start(start) ?? throw new InvalidOperationException("kubectl did not start");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(TimeSpan.FromMinutes(1))) { process.Kill(entireProcessTree: true); throw new TimeoutException($"kubectl {string.Join(' ', args)} timed out"); }
        if (process.ExitCode != 0) throw new InvalidOperationException($"kubectl {string.Join(' ', args)} exited {process.ExitCode}: {stderr.Result}");
        return stdout.Result;
    }

    // kubectl is found on PATH; its built-in kustomize must be v4 or newer (kubectl 1.21+): older ones (Debian's
    // kubernetes-client 1.20 has kustomize v2) cannot take directories under `resources:`.
    private static string? FindKubectlProblem()
    {
        var onPath = (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Any(dir => File.Exists(Path.Combine(dir, "kubectl")));
        if (!onPath) return "kubectl is not installed (scripts/install-prereqs.sh installs it): the deploy/ manifests cannot be rendered";
        string version;
        try { version = Kubectl("version", "--client"); }
        catch (Exception e) when (e is InvalidOperationException or TimeoutException or System.ComponentModel.Win32Exception)
        { return $"kubectl does not run: {e.Message}"; }
        var kustomize = KustomizeVersion().Match(version);
        return kustomize.Success && int.Parse(kustomize.Groups[1].Value) >= 4
            ? null
            : $"kubectl has no kustomize v4 or newer (`kubectl version --client` says: {version.Trim().Replace('\n', ' ')})";
    }

    [GeneratedRegex(@"Kustomize Version:\s*v(\d+)\.")]
    private static partial Regex KustomizeVersion();

    private static string FindRepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "SolarCsi.sln")) && Directory.Exists(Path.Combine(dir.FullName, "deploy")))
                return dir.FullName;
        throw new DirectoryNotFoundException($"no SolarCsi.sln with deploy/ above {AppContext.BaseDirectory}");
    }
}
