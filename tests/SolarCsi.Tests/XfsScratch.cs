namespace SolarCsi.Tests;

/// <summary>
/// A small xfs (reflink on, as mkfs.xfs makes it by default) on a sparse image, loop-mounted at <see cref="Path"/>:
/// the filesystem a pool cuts snapshots on by reflink. Needs root and mkfs.xfs (<see cref="WhyUnavailable"/>).
/// Unmounted lazily on dispose, then the image goes (the loop device is released with the last unmount).
/// </summary>
internal sealed class XfsScratch : IDisposable
{
    private readonly string _image;

    public XfsScratch(string parent, long bytes = 512L << 20)
    {
        Path = System.IO.Path.Combine(parent, "xfs");
        _image = System.IO.Path.Combine(parent, "xfs.img");
        Directory.CreateDirectory(Path);
        using (var image = new FileStream(_image, FileMode.CreateNew)) image.SetLength(bytes);
        HostCommand.Run("mkfs.xfs", "-q", "-m", "reflink=1", _image);
        HostCommand.Run("mount", "-o", "loop", _image, Path);
    }

    public string Path { get; }

    public static string? WhyUnavailable() =>
        Environment.UserName != "root" ? "mounting a loop device needs root"
        : SolarCsi.Node.Processes.HostTools.Locate("mkfs.xfs") is null ? "mkfs.xfs is not installed (xfsprogs)"
        : null;

    public void Dispose()
    {
        try { HostCommand.Run("umount", "-l", Path); }
        finally { File.Delete(_image); }
    }
}
