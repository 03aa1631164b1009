using k8s.Models;

namespace SolarCsi.Tests.Deploy;

/// <summary>What the RBAC objects of a rendered install grant each ServiceAccount.</summary>
internal static class Rbac
{
    public sealed record Subject(string Namespace, string Name);

    /// <summary>One rule as a table row or an upstream RBAC file states it.</summary>
    public sealed record Rule(string Group, string Resource, params string[] Verbs)
    {
        public override string ToString() => $"{(Group.Length == 0 ? "" : Group + "/")}{Resource}: {string.Join(',', Verbs)}";
    }

    public static IEnumerable<(Subject Subject, V1RoleRef Role, string? BindingNamespace)> Bindings(IReadOnlyList<object> objects) =>
        objects.OfType<V1ClusterRoleBinding>().SelectMany(b => (b.Subjects ?? []).Select(s => (s, b.RoleRef, (string?)null)))
            .Concat(objects.OfType<V1RoleBinding>().SelectMany(b => (b.Subjects ?? []).Select(s => (s, b.RoleRef, (string?)b.Metadata.NamespaceProperty))))
            .Select(x => x.s.Kind == "ServiceAccount"
                ? (new Subject(x.s.NamespaceProperty ?? x.Item3 ?? throw new InvalidDataException($"subject {x.s.Name} has no namespace"), x.s.Name), x.RoleRef, x.Item3)
                : throw new InvalidDataException($"binding to a {x.s.Kind} ({x.s.Name}): only ServiceAccounts are expected"));

    /// <summary>Verbs granted to a ServiceAccount on a resource, cluster-wide (<paramref name="inNamespace"/> null) or in one namespace.</summary>
    public static HashSet<string> Granted(IReadOnlyList<object> objects, Subject subject, string apiGroup, string resource, string? inNamespace)
    {
        var verbs = new HashSet<string>();
        foreach (var (_, roleRef, ns) in Bindings(objects).Where(b => b.Subject == subject))
        {
            if (ns is not null && ns != inNamespace) continue;
            var rules = roleRef.Kind == "ClusterRole"
                ? objects.OfType<V1ClusterRole>().Single(r => r.Metadata.Name == roleRef.Name).Rules
                : objects.OfType<V1Role>().Single(r => r.Metadata.Name == roleRef.Name && r.Metadata.NamespaceProperty == ns).Rules;
            foreach (var rule in rules.Where(r => r.ApiGroups.Contains(apiGroup) && r.Resources.Contains(resource)))
                verbs.UnionWith(rule.Verbs);
        }
        return verbs;
    }

    /// <summary>A role's rules flattened to one (group, resource) → verbs entry each, to compare rule sets written differently.</summary>
    public static SortedDictionary<string, string> Flatten(IEnumerable<Rule> rules)
    {
        var map = new SortedDictionary<string, SortedSet<string>>(StringComparer.Ordinal);
        foreach (var rule in rules)
        {
            var key = $"{rule.Group}/{rule.Resource}";
            if (!map.TryGetValue(key, out var verbs)) map[key] = verbs = new SortedSet<string>(StringComparer.Ordinal);
            verbs.UnionWith(rule.Verbs);
        }
        return new SortedDictionary<string, string>(map.ToDictionary(kv => kv.Key, kv => string.Join(',', kv.Value)), StringComparer.Ordinal);
    }

    public static IEnumerable<Rule> RulesOf(V1ClusterRole role) =>
        role.Rules.SelectMany(r => r.ApiGroups.SelectMany(g => r.Resources.Select(res => new Rule(g, res, [.. r.Verbs]))));
}
