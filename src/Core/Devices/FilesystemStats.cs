using System.Runtime.InteropServices;

namespace SolarCsi.Core.Devices;

public sealed record FilesystemUsage(long TotalBytes, long AvailableBytes, long UsedBytes, long TotalInodes, long FreeInodes, long UsedInodes);

/// <summary>statvfs(3) without spawning a process: NodeGetVolumeStats is called every minute per volume.</summary>
public static partial class FilesystemStats
{
    public static FilesystemUsage Of(string path)
    {
        // struct statvfs on 64-bit glibc: eleven 64-bit fields (bsize, frsize, blocks, bfree, bavail, files, ffree,
        // favail, fsid, flag, namemax) then spare ints.
        Span<ulong> f = stackalloc ulong[16];
        unsafe
        {
            fixed (ulong* p = f)
            {
                if (StatVfs(path, p) != 0)
                    throw new IOException($"statvfs {path} failed: errno {Marshal.GetLastPInvokeError()}");
            }
        }
        var frsize = (long)f[1];
        long blocks = (long)f[2], bfree = (long)f[3], bavail = (long)f[4], files = (long)f[5], ffree = (long)f[6];
        return new FilesystemUsage(blocks * frsize, bavail * frsize, (blocks - bfree) * frsize, files, ffree, files - ffree);
    }

    [LibraryImport("libc", EntryPoint = "statvfs", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static unsafe partial int StatVfs(string path, ulong* buffer);
}
