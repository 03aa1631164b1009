using System.Runtime.InteropServices;

namespace SolarCsi.Node.Devices;

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

    /// <summary>
    /// Bytes the filesystem has really allocated to <paramref name="file"/> (st_blocks × 512): for a sparse image, what
    /// has been written, not its size. 0 when the file is gone.
    /// </summary>
    public static long AllocatedBytesOf(string file)
    {
        // struct stat on 64-bit Linux (x86_64 and the generic layout of arm64 alike): st_blocks is the 64-bit field at
        // byte 64 of a 144-byte (x86_64) / 128-byte (arm64) structure.
        Span<long> buffer = stackalloc long[32];
        unsafe
        {
            fixed (long* p = buffer)
            {
                if (Stat(file, p) != 0)
                {
                    var errno = Marshal.GetLastPInvokeError();
                    if (errno == 2) return 0; // ENOENT: deleted meanwhile
                    throw new IOException($"stat {file} failed: errno {errno}");
                }
            }
        }
        return buffer[8] * 512;
    }

    [LibraryImport("libc", EntryPoint = "stat", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static unsafe partial int Stat(string path, long* buffer);

    [LibraryImport("libc", EntryPoint = "statvfs", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static unsafe partial int StatVfs(string path, ulong* buffer);
}
