using System.Runtime.InteropServices;

namespace SolarCsi.Core.Devices;

/// <summary>Device and inode of a file: what a loop device's backing file is checked against before reuse.</summary>
public static partial class FileIdentity
{
    /// <summary>A file's identity as a loop device reports its backing file (BACK-MAJ:MIN, BACK-INO).</summary>
    public sealed record Key(string MajorMinor, ulong Inode);

    /// <summary>The file's identity, or null when it cannot be stat'ed (gone, or a FUSE file whose server is gone).</summary>
    public static Key? TryKeyOf(string path)
    {
        try { return Of(path); }
        catch (IOException) { return null; }
    }

    public static Key Of(string path)
    {
        // struct stat on x86_64/aarch64 glibc starts with st_dev then st_ino, both 64-bit.
        Span<byte> buffer = stackalloc byte[256];
        unsafe
        {
            fixed (byte* p = buffer)
            {
                if (Stat(path, p) != 0)
                    throw new IOException($"stat {path} failed: errno {Marshal.GetLastPInvokeError()}");
            }
        }
        return new Key(LoopStatus.MajorMinor(BitConverter.ToUInt64(buffer[..8])), BitConverter.ToUInt64(buffer[8..16]));
    }

    [LibraryImport("libc", EntryPoint = "stat", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static unsafe partial int Stat(string path, byte* buffer);
}
