using System.Text.RegularExpressions;
using SolarCsi.Core.Errors;

namespace SolarCsi.Core.Ids;

/// <summary>
/// Identity of a volume or snapshot, encoded so that every RPC can route without a lookup table:
/// <c>media~pool~node~name</c>. Volume names start with 'v', snapshot names with 's', group snapshot names with 'g'
/// (a group snapshot's id names the node that keeps its record).
/// Every segment is a lowercase DNS-label-like token, so an id can never carry '/', '..' or whitespace
/// into a path or a command line.
/// </summary>
public sealed partial record StorageId(string Media, string Pool, string Node, string Name)
{
    public const int MaxLength = 128;
    private const char Separator = '~';

    public bool IsVolume => Name.StartsWith('v');
    public bool IsSnapshot => Name.StartsWith('s');
    public bool IsGroupSnapshot => Name.StartsWith('g');

    public override string ToString() => string.Join(Separator, Media, Pool, Node, Name);

    public static StorageId ForVolume(string media, string pool, string node, string csiName) =>
        Create(media, pool, node, "v" + NameHash.Of(csiName));

    public static StorageId ForSnapshot(string media, string pool, string node, string csiName) =>
        Create(media, pool, node, "s" + NameHash.Of(csiName));

    public static StorageId ForGroupSnapshot(string media, string pool, string node, string csiName) =>
        Create(media, pool, node, "g" + NameHash.Of(csiName));

    private static StorageId Create(string media, string pool, string node, string name)
    {
        var id = new StorageId(media, pool, node, name);
        if (!TryParse(id.ToString(), out _))
            throw CsiErrors.InvalidArgument($"cannot form a valid id from media '{media}', pool '{pool}', node '{node}'");
        return id;
    }

    public static bool TryParse(string? text, out StorageId id)
    {
        id = null!;
        if (string.IsNullOrEmpty(text) || text.Length > MaxLength) return false;
        var parts = text.Split(Separator);
        if (parts.Length != 4) return false;
        if (!MediaPattern().IsMatch(parts[0]) || !IsValidPool(parts[1]) || !IsValidNode(parts[2]) || !NamePattern().IsMatch(parts[3]))
            return false;
        id = new StorageId(parts[0], parts[1], parts[2], parts[3]);
        return true;
    }

    public static bool IsValidNode(string node) => NodePattern().IsMatch(node) && !node.Contains("..", StringComparison.Ordinal);
    public static bool IsValidPool(string pool) => LabelPattern().IsMatch(pool);

    public static StorageId ParseVolume(string? text, string field = "volume_id")
    {
        if (string.IsNullOrEmpty(text)) throw CsiErrors.InvalidArgument($"{field} is required");
        if (!TryParse(text, out var id) || !id.IsVolume)
            throw CsiErrors.NotFound($"{field} '{Printable(text)}' is not a volume of this driver");
        return id;
    }

    public static StorageId ParseSnapshot(string? text, string field = "snapshot_id")
    {
        if (string.IsNullOrEmpty(text)) throw CsiErrors.InvalidArgument($"{field} is required");
        if (!TryParse(text, out var id) || !id.IsSnapshot)
            throw CsiErrors.NotFound($"{field} '{Printable(text)}' is not a snapshot of this driver");
        return id;
    }

    /// <summary>Keeps hostile ids from spilling control characters or megabytes into messages and logs.</summary>
    public static string Printable(string text)
    {
        var cut = text.Length > MaxLength ? text[..MaxLength] + "…" : text;
        return new string(cut.Select(c => char.IsControl(c) ? '?' : c).ToArray());
    }

    [GeneratedRegex("^[a-z][a-z0-9]{0,15}$")]
    private static partial Regex MediaPattern();

    [GeneratedRegex("^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$")]
    private static partial Regex LabelPattern();

    // Kubernetes node names are DNS subdomains.
    [GeneratedRegex("^[a-z0-9]([a-z0-9.-]{0,61}[a-z0-9])?$")]
    private static partial Regex NodePattern();

    [GeneratedRegex("^[vsg][0-9a-f]{24}$")]
    private static partial Regex NamePattern();
}
