namespace SolarCsi.Node.Mounts;

/// <summary>One line of /proc/self/mountinfo.</summary>
public sealed record MountEntry(
    int Id, int ParentId, string MajorMinor, string Root, string MountPoint,
    IReadOnlyList<string> Options, string FsType, string Source, IReadOnlyList<string> SuperOptions)
{
    public bool ReadOnly => Options.Contains("ro");

    /// <summary>
    /// Whether this mount shows <paramref name="device"/>: a filesystem on it, or a bind mount of the device node
    /// itself (raw block publish), which mountinfo reports as a devtmpfs mount whose root is the node's path in /dev:
    /// the kernel's name (/dm-3) where the path is a link to it, or the node itself where it is one of its own
    /// (/mapper/vg-lv, made by libdevmapper when no udev links it).
    /// </summary>
    public bool Shows(string device)
    {
        if (Source == device) return true;
        if (FsType != "devtmpfs" || !device.StartsWith('/')) return false;
        // The node's own path answers for every device under /dev (one path resolution); the kernel's name only for a
        // path elsewhere that leads to the same device.
        var real = SolarCsi.Core.Validation.RealPath.OfExistingPrefix(device);
        return "/dev" + Root == real || Root == "/" + Devices.DeviceNames.KernelName(real);
    }
}
