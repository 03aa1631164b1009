using SolarCsi.Node.Mounts;

namespace SolarCsi.Tests.Node.Staging;

/// <summary>
/// An in-memory mount table that behaves as the kernel's does where staging code depends on it: mounts stack at a
/// path, unmount takes the top one, a bind of a mounted directory shows that mount's source, and unmounting what is
/// not mounted fails. Every change is recorded, so a test can assert that a refused call touched nothing.
/// </summary>
internal sealed class FakeMounter : IMounter
{
    private readonly List<MountEntry> _mounts = [];
    private int _nextId = 100;

    public List<string> Changes { get; } = [];

    public Task<MountTable> ListAsync(CancellationToken ct) => Task.FromResult(new MountTable(_mounts.ToArray()));

    /// <summary>Something mounted at a path behind the staging code's back (another plugin, an admin).</summary>
    public void Add(string source, string target, string fsType = "ext4", bool readOnly = false, string root = "/") =>
        _mounts.Add(new MountEntry(_nextId++, 1, "0:0", root, target, readOnly ? ["ro"] : ["rw"], fsType, source, []));

    public Task MountAsync(string source, string target, string? fsType, IReadOnlyList<string> options, CancellationToken ct)
    {
        RequireTarget(target);
        Add(source, target, fsType ?? "auto", options.Contains("ro"));
        Changes.Add($"mount {source} {target} {string.Join(',', options)}");
        return Task.CompletedTask;
    }

    public Task RemountAsync(string target, IReadOnlyList<string> options, CancellationToken ct)
    {
        Changes.Add($"remount {target} {string.Join(',', options)}");
        return Task.CompletedTask;
    }

    public Task BindAsync(string source, string target, bool readOnly, CancellationToken ct)
    {
        RequireTarget(target);
        // A bind shows what is mounted at its source (the staging mount's device). A bind of a device node is shown as
        // the kernel shows it: a devtmpfs mount rooted at the node's name, not the device as its source.
        if (_mounts.LastOrDefault(m => m.MountPoint == source) is { } shown)
            Add(shown.Source, target, shown.FsType, readOnly);
        else if (source.StartsWith("/dev/", StringComparison.Ordinal))
            Add("udev", target, "devtmpfs", readOnly, root: source["/dev".Length..]);
        else
            Add(source, target, "none", readOnly);
        Changes.Add($"bind {source} {target} {(readOnly ? "ro" : "rw")}");
        return Task.CompletedTask;
    }

    public Task UnmountAsync(string target, CancellationToken ct)
    {
        var top = _mounts.LastOrDefault(m => m.MountPoint == target) ?? throw new InvalidOperationException($"umount: {target}: not mounted");
        _mounts.Remove(top);
        Changes.Add($"umount {target}");
        return Task.CompletedTask;
    }

    private static void RequireTarget(string target)
    {
        if (!Path.Exists(target)) throw new InvalidOperationException($"mount point {target} does not exist");
    }
}
