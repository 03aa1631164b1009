using SolarCsi.Core.Validation;

namespace SolarCsi.Node.Devices;

/// <summary>
/// The names one block device goes by. Stable paths (/dev/vg/lv, /dev/disk/by-id/…) are symlinks; the kernel
/// knows the node by its own name (dm-3, loop5); and mount(8) records device-mapper devices as
/// /dev/mapper/NAME. Comparisons against mountinfo must use the name mount(8) wrote there.
/// </summary>
public static class DeviceNames
{
    /// <summary>The kernel's name for the device behind <paramref name="path"/> (e.g. "dm-3" for /dev/vg/lv).</summary>
    public static string KernelName(string path)
    {
        var real = RealPath.OfExistingPrefix(path);
        var name = Path.GetFileName(real);
        if (Directory.Exists(Path.Combine("/sys/class/block", name))) return name;
        // Where no udev links /dev/mapper/NAME to ../dm-N (a node whose /dev is not the host's, lvm run with udev off),
        // the device node is a file of its own: its device number names the kernel's device.
        if (FileIdentity.TryBlockDeviceNumberOf(real) is not { } number) return name;
        try
        {
            // A stale node whose device is gone has no entry there: it keeps its own name.
            return new DirectoryInfo(Path.Combine("/sys/dev/block", number)).ResolveLinkTarget(returnFinalTarget: true)?.Name ?? name;
        }
        catch (IOException)
        {
            return name;
        }
    }

    /// <summary>The path mountinfo shows as the source of a filesystem mounted from this device.</summary>
    public static string MountSource(string path, string sysBlock = "/sys/class/block")
    {
        var real = RealPath.OfExistingPrefix(path);
        var kernel = Path.GetFileName(real);
        var dmName = Path.Combine(sysBlock, kernel, "dm", "name");
        return kernel.StartsWith("dm-", StringComparison.Ordinal) && File.Exists(dmName)
            ? "/dev/mapper/" + File.ReadAllText(dmName).Trim()
            : real;
    }

    /// <summary>"MAJOR:MINOR" from sysfs, as mountinfo's third field shows it; null when the kernel has no such device.</summary>
    public static string? MajorMinor(string path, string sysBlock = "/sys/class/block")
    {
        var dev = Path.Combine(sysBlock, KernelName(path), "dev");
        return File.Exists(dev) ? File.ReadAllText(dev).Trim() : null;
    }
}
