using System.Runtime.InteropServices;
using SolarCsi.Core.Interop;

namespace SolarCsi.Node.Devices;

/// <summary>
/// Lists bound loop devices the way <c>losetup --list</c> does, without starting it: sysfs names each bound device
/// (<c>/sys/block/loopN/loop/</c> exists only while bound) and its backing file, and LOOP_GET_STATUS64 on the
/// device gives the backing file's inode and device, which identify the file even if it was replaced or renamed.
/// A losetup process costs about 6 ms here and the node asks several times per stage (bench/RESULTS.md).
/// </summary>
public static class LoopStatus
{
    private const string DeletedSuffix = " (deleted)";

    /// <summary>
    /// The bound loop devices, or null when this host does not let us read them directly (no sysfs, or the device
    /// nodes cannot be opened): the caller then asks losetup.
    /// </summary>
    public static IReadOnlyList<LoopDevice>? TryList(string sysBlock = "/sys/block", string devDir = "/dev")
    {
        if (!Directory.Exists(sysBlock)) return null;
        var devices = new List<LoopDevice>();
        foreach (var dir in Directory.EnumerateDirectories(sysBlock, "loop*"))
        {
            var name = Path.GetFileName(dir);
            string backing, ro, dio;
            try
            {
                backing = File.ReadAllText(Path.Combine(dir, "loop", "backing_file")).TrimEnd('\n');
                dio = File.ReadAllText(Path.Combine(dir, "loop", "dio")).Trim();
                ro = File.ReadAllText(Path.Combine(dir, "ro")).Trim();
            }
            catch (IOException)
            {
                // Not bound (no loop/ directory), or unbound while we looked: sysfs then answers ENOENT or ENODEV
                // (bench-lifecycle met the latter with 100 volumes in flight).
                continue;
            }
            if (backing.EndsWith(DeletedSuffix, StringComparison.Ordinal)) backing = backing[..^DeletedSuffix.Length];
            var status = GetStatus(Path.Combine(devDir, name), out var errno);
            if (status is null)
            {
                if (errno is Enxio or Enoent or Enodev) continue; // unbound (or gone) between the sysfs read and the ioctl
                // A device over a file whose FUSE server is gone (an nbdfuse killed, its mount detached: sysfs then
                // names the file relative to the lost mount, e.g. "/disk") cannot be stat'ed (ENOTCONN). losetup lists
                // it with no inode, and so does this: it is still a bound device, residue for whoever matches it.
                if (errno == Enotconn)
                {
                    devices.Add(new LoopDevice(Path.Combine(devDir, name), backing, 0, "", ro == "1", dio == "1"));
                    continue;
                }
                return null;
            }
            devices.Add(new LoopDevice(Path.Combine(devDir, name), backing, status.Value.Inode, MajorMinor(status.Value.Device), ro == "1", dio == "1"));
        }
        return devices;
    }

    /// <summary>Decodes a dev_t as glibc's major()/minor() do, formatted as losetup prints BACK-MAJ:MIN.</summary>
    public static string MajorMinor(ulong dev)
    {
        var major = ((dev >> 8) & 0xfff) | ((dev >> 32) & ~0xfffUL);
        var minor = (dev & 0xff) | ((dev >> 12) & ~0xffUL);
        return $"{major & 0xffffffff}:{minor & 0xffffffff}";
    }

    private const int Enoent = 2;
    private const int Enxio = 6;
    private const int Enodev = 19;
    private const int Enotconn = 107;
    private const nuint LoopGetStatus64 = 0x4C05;

    private static unsafe LoopInfo64? GetStatus(string device, out int errno)
    {
        var fd = Libc.Open(device, Libc.ReadOnly | Libc.CloseOnExec);
        if (fd < 0)
        {
            errno = Marshal.GetLastPInvokeError();
            return null;
        }
        try
        {
            var info = default(LoopInfo64);
            if (Libc.Ioctl(fd, LoopGetStatus64, &info) != 0)
            {
                errno = Marshal.GetLastPInvokeError();
                return null;
            }
            errno = 0;
            return info;
        }
        finally
        {
            _ = Libc.Close(fd);
        }
    }

    /// <summary>struct loop_info64 (linux/loop.h): 232 bytes; only the leading fields are read.</summary>
    [StructLayout(LayoutKind.Sequential, Size = 232)]
    private struct LoopInfo64
    {
        public ulong Device;
        public ulong Inode;
    }
}
