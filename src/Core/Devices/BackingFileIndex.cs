namespace SolarCsi.Core.Devices;

/// <summary>
/// Finds which of a set of known files a loop device is bound to, by the same rule as
/// <see cref="LoopDevice.IsBackedBy"/>: by identity, by path only where one side has none.
/// </summary>
public sealed class BackingFileIndex<T>
{
    private readonly Dictionary<FileIdentity.Key, (string File, T Value)> _byKey = [];
    private readonly Dictionary<string, T> _byPath = new(StringComparer.Ordinal);
    private readonly Dictionary<string, T> _byPathWithoutKey = new(StringComparer.Ordinal);

    public BackingFileIndex(IEnumerable<(string File, T Value)> files)
    {
        foreach (var (file, value) in files)
        {
            _byPath[file] = value;
            if (FileIdentity.TryKeyOf(file) is { } key) _byKey[key] = (file, value);
            else _byPathWithoutKey[file] = value;
        }
    }

    public bool TryFind(LoopDevice loop, out string file, out T value)
    {
        if (loop.BackingInode != 0 && _byKey.TryGetValue(new FileIdentity.Key(loop.BackingMajorMinor, loop.BackingInode), out var hit))
        {
            (file, value) = hit;
            return true;
        }
        file = loop.BackingFile;
        return (loop.BackingInode == 0 ? _byPath : _byPathWithoutKey).TryGetValue(loop.BackingFile, out value!);
    }
}
