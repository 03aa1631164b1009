using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text.RegularExpressions;
using k8s;
using k8s.Models;

namespace SolarCsi.Tests.Deploy;

/// <summary>
/// The deploy/ kustomizations, rendered by <c>kubectl kustomize</c> (offline) and parsed by <see cref="StrictYaml"/>.
/// Renders are cached: each kustomization is rendered once per test run.
/// </summary>
internal static partial class Manifests
{
    public const string Top = ".", Base = "base", StorageClasses = "storageclasses", Examples = "examples";
    public static readonly string[] All = [Top, Base, StorageClasses, Examples];

    public static string RepoRoot { get; } = FindRepoRoot();

    public static string DeployPath(string relative) => Path.GetFullPath(Path.Combine(RepoRoot, "deploy", relative));

    private static readonly Lazy<string?> KubectlProblem = new(FindKubectlProblem);
    private static readonly ConcurrentDictionary<string, Lazy<string>> Rendered = new();
    private static readonly ConcurrentDictionary<string, Lazy<IReadOnlyList<object>>> Parsed = new();

    /// <summary>Skips the calling [SkippableFact] when this machine cannot render kustomizations, saying why.</summary>
    public static void RequireKubectl() => Skip.If(KubectlProblem.Value is not null, KubectlProblem.Value);

    public static string Render(string kustomization)
    {
        RequireKubectl();
        return Rendered.GetOrAdd(kustomization, k => new Lazy<string>(() => Kubectl("kustomize", DeployPath(k)))).Value;
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
