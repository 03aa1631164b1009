using System.Text.RegularExpressions;
using SolarCsi.Core.Storage;

namespace SolarCsi.Node.Pools;

/// <summary>
/// Media-side objects (LVs, pmem namespaces) that may exist without a record because an operation on them was cut
/// short. A create marks the name before it makes the object and clears the mark once the record is written; a
/// delete marks before it drops the record and clears once the object is gone. Start-up removes only marked objects
/// without a record: an empty or wrong state directory must not make every volume on the device look like an orphan.
/// </summary>
public sealed partial class PendingOperations
{
    private readonly string _dir;

    public PendingOperations(string root)
    {
        _dir = Path.Combine(root, "pending");
        Directory.CreateDirectory(_dir);
    }

    public Task MarkAsync(string name, CancellationToken ct) => AtomicFile.WriteAsync(PathOf(name), [], ct);
    public void Clear(string name) => AtomicFile.Delete(PathOf(name));
    public bool IsMarked(string name) => File.Exists(PathOf(name));

    public IReadOnlyList<string> List() =>
        Directory.EnumerateFiles(_dir).Select(Path.GetFileName).OfType<string>().Where(n => NamePattern().IsMatch(n))
            .Order(StringComparer.Ordinal).ToArray();

    // Names are the name part of a storage id, already validated; checked again because they become paths.
    private string PathOf(string name) =>
        NamePattern().IsMatch(name) ? Path.Combine(_dir, name) : throw new ArgumentException($"not a volume or snapshot name: {name}", nameof(name));

    [GeneratedRegex("^[vs][0-9a-f]{24}$")]
    private static partial Regex NamePattern();
}
