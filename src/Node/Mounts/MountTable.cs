using System.Collections;

namespace SolarCsi.Node.Mounts;

/// <summary>
/// The kernel's mount table as read at one moment (<see cref="IMounter.ListAsync"/>), with the questions every caller
/// asks of it. A mount "of" a device is one that <see cref="MountEntry.Shows"/> it: a filesystem on the device or a
/// bind of its node (raw block publish), so a check never misses a block target by comparing sources.
/// </summary>
public sealed class MountTable(IReadOnlyList<MountEntry> entries) : IReadOnlyList<MountEntry>
{
    /// <summary>The top mount at <paramref name="path"/> (what a process opening the path sees), if any.</summary>
    public MountEntry? TopAt(string path) => entries.LastOrDefault(m => m.MountPoint == path);

    /// <summary>Whether anything at all is mounted at <paramref name="path"/>.</summary>
    public bool IsMountPoint(string path) => entries.Any(m => m.MountPoint == path);

    /// <summary>Whether a mount at <paramref name="path"/> is of <paramref name="device"/>.</summary>
    public bool Holds(string path, string device) => entries.Any(m => m.MountPoint == path && m.Shows(device));

    /// <summary>Whether a mount at <paramref name="path"/> is of something other than <paramref name="device"/> (or of anything, for null).</summary>
    public bool HoldsOtherThan(string path, string? device) => entries.Any(m => m.MountPoint == path && (device is null || !m.Shows(device)));

    /// <summary>Where <paramref name="device"/> is mounted, leaving out the given paths (the volume's own mounts).</summary>
    public IReadOnlyList<string> PlacesOf(string device, params IReadOnlyCollection<string?> except) =>
        entries.Where(m => m.Shows(device) && !except.Contains(m.MountPoint)).Select(m => m.MountPoint).ToArray();

    /// <summary>Whether <paramref name="device"/> is mounted anywhere.</summary>
    public bool IsInUse(string device) => entries.Any(m => m.Shows(device));

    /// <summary>
    /// Where a whole device is in use: a filesystem on it (its device number, whatever path mounted it) or a bind of
    /// its node (raw block).
    /// </summary>
    public IReadOnlyList<string> PlacesOfDevice(string node, string? majorMinor) =>
        entries.Where(m => (majorMinor is not null && m.MajorMinor == majorMinor) || m.Shows(node)).Select(m => m.MountPoint).ToArray();

    /// <summary>Mount points strictly below <paramref name="directory"/>.</summary>
    public IReadOnlyList<string> Under(string directory) =>
        entries.Where(m => m.MountPoint.StartsWith(directory.TrimEnd('/') + "/", StringComparison.Ordinal)).Select(m => m.MountPoint).ToArray();

    public MountEntry this[int index] => entries[index];
    public int Count => entries.Count;
    public IEnumerator<MountEntry> GetEnumerator() => entries.GetEnumerator();
    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();
}
