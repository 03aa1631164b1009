using System.Runtime.InteropServices;
using SolarCsi.Core.Interop;

namespace SolarCsi.Core.Storage;

/// <summary>
/// A copy of a file that shares its blocks with the original (FICLONE: xfs with reflink, btrfs). It takes time
/// proportional to the file's extent count, not its size, and once taken it no longer changes whatever is written
/// to the original: a point in time cut in milliseconds, which is what lets a snapshot hold writers only that long.
/// </summary>
public static class Reflink
{
    // _IOW(0x94, 9, int): linux/fs.h
    private const nuint Ficlone = 0x40049409;
    private const int Exdev = 18, Einval = 22, Enotty = 25, Eopnotsupp = 95;

    /// <summary>
    /// Clones <paramref name="source"/> to the new file <paramref name="destination"/> (mode 0600, flushed) and answers
    /// true; answers false, leaving no destination behind, when the filesystem cannot share blocks (ext4, tmpfs) or
    /// the two paths are on different filesystems. Other failures throw.
    /// </summary>
    public static unsafe bool TryClone(string source, string destination)
    {
        using var from = new FileStream(source, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        var done = false;
        try
        {
            using var to = new FileStream(destination, new FileStreamOptions
            {
                Mode = FileMode.CreateNew, Access = FileAccess.Write, Share = FileShare.None,
                UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
            });
            var sourceFd = from.SafeFileHandle.DangerousGetHandle();
            if (Libc.Ioctl((int)to.SafeFileHandle.DangerousGetHandle(), Ficlone, (void*)sourceFd) != 0)
            {
                var errno = Marshal.GetLastPInvokeError();
                if (errno is Exdev or Einval or Enotty or Eopnotsupp) return false;
                throw new IOException($"cloning {source} to {destination} failed: errno {errno}");
            }
            to.Flush(flushToDisk: true);
            done = true;
            return true;
        }
        finally
        {
            if (!done) File.Delete(destination);
        }
    }
}
