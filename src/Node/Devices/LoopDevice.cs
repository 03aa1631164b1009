namespace SolarCsi.Node.Devices;

/// <summary>A loop device as losetup reports it; BackingInode identifies the file even if it was renamed.</summary>
public sealed record LoopDevice(string Name, string BackingFile, ulong BackingInode, string BackingMajorMinor, bool ReadOnly, bool DirectIo)
{
    /// <summary>
    /// Whether this device is bound to <paramref name="file"/>, whose identity is <paramref name="key"/> (null when the
    /// file cannot be stat'ed). The identity decides wherever both sides have one: the path the kernel reports is
    /// the one the binding process saw, and once that process's mount namespace is gone — the node plugin's
    /// container restarted — it is cut to the part below the lost mount ("/disk", "/pools/file/…"), although the
    /// device is still bound to the very same file. The path decides only where an identity is missing: a file
    /// that cannot be stat'ed (gone, or on a FUSE mount whose server died — the kernel may still list the device with
    /// the inode it cached), or a device listed without an inode.
    /// </summary>
    public bool IsBackedBy(string file, FileIdentity.Key? key) =>
        key is not null && BackingInode != 0
            ? BackingInode == key.Inode && BackingMajorMinor == key.MajorMinor
            : BackingFile == file;
}
