using System.Runtime.InteropServices;

namespace SolarCsi.Core.Devices;

/// <summary>Device and inode of a file: what a loop device's backing file is checked against before reuse.</summary>
public static partial class FileIdentity
{
    public static ulong InodeOf(string path)
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
        return BitConverter.ToUInt64(buffer[8..16]);
    }

    [LibraryImport("libc", EntryPoint = "stat", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static unsafe partial int Stat(string path, byte* buffer);
}
