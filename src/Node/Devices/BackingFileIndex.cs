namespace SolarCsi.Node.Devices;

/// <summary>
/// Finds which of a set of known files a loop device is bound to, by <see cref="LoopDevice.IsBackedBy"/> (the one
/// place the matching rule lives). Each file is stat'ed once, when the index is built.
/// </summary>
public sealed class BackingFileIndex<T>(IEnumerable<(string File, T Value)> files)
{
    private readonly (string File, FileIdentity.Key? Key, T Value)[] _files =
        files.Select(f => (f.File, FileIdentity.TryKeyOf(f.File), f.Value)).ToArray();

    public bool TryFind(LoopDevice loop, out string file, out T value)
    {
        foreach (var (candidate, key, v) in _files)
        {
            if (!loop.IsBackedBy(candidate, key)) continue;
            (file, value) = (candidate, v);
            return true;
        }
        (file, value) = ("", default!);
        return false;
    }
}
