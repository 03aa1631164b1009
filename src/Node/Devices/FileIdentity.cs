using System.Runtime.InteropServices;

namespace SolarCsi.Node.Devices;

/// <summary>
/// What stat(2) says of a file, read in one place: its identity (what a loop device's backing file is checked against
/// before reuse), its stamp (whether a state file changed) and, for a block device node, which device it is.
/// </summary>
public static partial class FileIdentity
{
    /// <summary>A file's identity as a loop device reports its backing file (BACK-MAJ:MIN, BACK-INO).</summary>
    public sealed record Key(string MajorMinor, ulong Inode);

    /// <summary>What a file's content is known by without reading it: device, inode, size and modification time.
    /// Every state file is written by rename (a new inode), so an unchanged stamp means unchanged content.</summary>
    public sealed record Stamp(ulong Device, ulong Inode, long Size, long ModifiedSeconds, long ModifiedNanoseconds);

    /// <summary>The file's identity, or null when it cannot be stat'ed (gone, or a FUSE file whose server is gone).</summary>
    public static Key? TryKeyOf(string path) => TryStat(path) is { } s ? KeyOf(s) : null;

    public static Key Of(string path) =>
        KeyOf(TryStat(path, out var errno) ?? throw new IOException($"stat {path} failed: errno {errno}"));

    /// <summary>The file's stamp from one stat, or null when it cannot be stat'ed.</summary>
    public static Stamp? TryStampOf(string path) =>
        TryStat(path) is { } s ? new Stamp(s.Device, s.Inode, s.Size, s.ModifiedSeconds, s.ModifiedNanoseconds) : null;

    /// <summary>"MAJOR:MINOR" of the block device node at <paramref name="path"/>; null when it is not one or cannot be stat'ed.</summary>
    public static string? TryBlockDeviceNumberOf(string path)
    {
        const uint typeMask = 0xF000, blockDevice = 0x6000;
        return TryStat(path) is { DeviceNumber: { } number } s && (s.Mode & typeMask) == blockDevice ? LoopStatus.MajorMinor(number) : null;
    }

    private static Key KeyOf(Fields s) => new(LoopStatus.MajorMinor(s.Device), s.Inode);

    /// <summary>The fields of struct stat this class reads; <see cref="DeviceNumber"/> only where the layout is known.</summary>
    private readonly record struct Fields(ulong Device, ulong Inode, uint Mode, ulong? DeviceNumber, long Size, long ModifiedSeconds, long ModifiedNanoseconds);

    private static Fields? TryStat(string path) => TryStat(path, out _);

    /// <summary>
    /// struct stat of glibc on x86_64 and aarch64 (the two places the plugins run): st_dev at 0, st_ino at 8, st_size at
    /// 48, st_mtim at 88 (seconds) and 96 (nanoseconds), all 64-bit, in both. st_mode and st_rdev are where they differ:
    /// x86_64 24 and 40, aarch64's generic layout 16 and 32; elsewhere they are not read.
    /// </summary>
    private static Fields? TryStat(string path, out int errno)
    {
        Span<byte> b = stackalloc byte[256];
        unsafe
        {
            fixed (byte* p = b)
            {
                if (Stat(path, p) != 0)
                {
                    errno = Marshal.GetLastPInvokeError();
                    return null;
                }
            }
        }
        errno = 0;
        var arch = RuntimeInformation.ProcessArchitecture;
        var (modeAt, rdevAt) = arch == Architecture.Arm64 ? (16, 32) : (24, 40);
        var known = arch is Architecture.X64 or Architecture.Arm64;
        return new Fields(BitConverter.ToUInt64(b[..8]), BitConverter.ToUInt64(b[8..16]), known ? BitConverter.ToUInt32(b.Slice(modeAt, 4)) : 0,
            known ? BitConverter.ToUInt64(b.Slice(rdevAt, 8)) : null, BitConverter.ToInt64(b[48..56]), BitConverter.ToInt64(b[88..96]),
            BitConverter.ToInt64(b[96..104]));
    }

    [LibraryImport("libc", EntryPoint = "stat", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static unsafe partial int Stat(string path, byte* buffer);
}
