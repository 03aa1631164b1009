using SolarCsi.Core.Errors;

namespace SolarCsi.Core.Validation;

/// <summary>
/// Staging and target paths come from the CO; we only ever mount under configured roots, and a path must be
/// absolute and normalised so that '..' or a doubled slash cannot smuggle it elsewhere.
/// </summary>
public sealed class PathRules(IReadOnlyList<string> allowedRoots)
{
    public IReadOnlyList<string> AllowedRoots { get; } = allowedRoots.Select(r => r.TrimEnd('/')).ToArray();

    public string Require(string? path, string field)
    {
        if (string.IsNullOrEmpty(path)) throw CsiErrors.InvalidArgument($"{field} is required");
        if (path.Length > 4096 || path.Any(char.IsControl))
            throw CsiErrors.InvalidArgument($"{field} is malformed");
        if (!path.StartsWith('/')) throw CsiErrors.InvalidArgument($"{field} '{path}' must be absolute");
        var trimmed = path.Length > 1 ? path.TrimEnd('/') : path;
        var segments = trimmed.Split('/');
        if (segments.Skip(1).Any(s => s is "" or "." or ".."))
            throw CsiErrors.InvalidArgument($"{field} '{path}' must be a normalised path (no '.', '..' or '//')");
        if (!UnderRoot(trimmed, AllowedRoots))
            throw CsiErrors.InvalidArgument($"{field} '{path}' is outside the allowed roots ({string.Join(", ", AllowedRoots)})");
        // The string is fine; now what it points at: a symlink on the way must not lead out of the roots.
        var resolved = RealPath.OfExistingPrefix(trimmed);
        if (!UnderRoot(resolved, AllowedRoots.Select(RealPath.OfExistingPrefix)))
            throw CsiErrors.InvalidArgument($"{field} '{path}' resolves to '{resolved}', outside the allowed roots");
        return trimmed;
    }

    private static bool UnderRoot(string path, IEnumerable<string> roots) =>
        roots.Any(root => path.StartsWith(root + "/", StringComparison.Ordinal));
}
