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
        Span<byte> buffer = stackalloc byte[256];
        StatInto(path, buffer);
        return new Key(LoopStatus.MajorMinor(BitConverter.ToUInt64(buffer[..8])), BitConverter.ToUInt64(buffer[8..16]));
    }

    /// <summary>What a file's content is known by without reading it: device, inode, size and modification time.
    /// Every state file is written by rename (a new inode), so an unchanged stamp means unchanged content.</summary>
    public sealed record Stamp(ulong Device, ulong Inode, long Size, long ModifiedSeconds, long ModifiedNanoseconds);

    /// <summary>The file's stamp from one stat, or null when it cannot be stat'ed.</summary>
    public static Stamp? TryStampOf(string path)
    {
        Span<byte> buffer = stackalloc byte[256];
        try { StatInto(path, buffer); }
        catch (IOException) { return null; }
        return new Stamp(BitConverter.ToUInt64(buffer[..8]), BitConverter.ToUInt64(buffer[8..16]), BitConverter.ToInt64(buffer[48..56]),
            BitConverter.ToInt64(buffer[88..96]), BitConverter.ToInt64(buffer[96..104]));
    }

    /// <summary>"MAJOR:MINOR" of the block device node at <paramref name="path"/>; null when it is not one or cannot be stat'ed.</summary>
    public static string? TryBlockDeviceNumberOf(string path)
    {
        Span<byte> buffer = stackalloc byte[256];
        try { StatInto(path, buffer); }
        catch (IOException) { return null; }
        // st_mode and st_rdev are where the two layouts differ (x86_64: 24 and 40; aarch64's generic layout: 16 and 32).
        if (RuntimeInformation.ProcessArchitecture is not (Architecture.X64 or Architecture.Arm64)) return null;
        var arm = RuntimeInformation.ProcessArchitecture == Architecture.Arm64;
        var mode = BitConverter.ToUInt32(buffer.Slice(arm ? 16 : 24, 4));
        const uint typeMask = 0xF000, blockDevice = 0x6000;
        return (mode & typeMask) == blockDevice ? LoopStatus.MajorMinor(BitConverter.ToUInt64(buffer.Slice(arm ? 32 : 40, 8))) : null;
    }

    /// <summary>
    /// struct stat of glibc on x86_64 and aarch64 (the two places the plugins run) agree where it is read above: st_dev
    /// at 0, st_ino at 8, st_size at 48, st_mtim at 88 (seconds) and 96 (nanoseconds), all 64-bit.
    /// </summary>
    private static void StatInto(string path, Span<byte> buffer)
    {
        unsafe
        {
            fixed (byte* p = buffer)
            {
                if (Stat(path, p) != 0)
                    throw new IOException($"stat {path} failed: errno {Marshal.GetLastPInvokeError()}");
            }
        }
    }

    [LibraryImport("libc", EntryPoint = "stat", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static unsafe partial int Stat(string path, byte* buffer);
}
