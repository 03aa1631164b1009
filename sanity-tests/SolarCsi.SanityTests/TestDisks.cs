using System.Diagnostics;

namespace SolarCsi.SanityTests;

/// <summary>
/// Loop devices standing in for a node's spare disks (this machine has none to give). Their image files live
/// outside the cluster's directory: to the driver they are hardware, not its own files. Disposing detaches them
/// and removes the images, whatever a test did.
/// </summary>
public sealed class TestDisks : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("solar-disks-").FullName;
    private readonly List<(string Device, string Image)> _disks = [];

    public string Add(string name, long bytes, string? foreignFs = null)
    {
        var image = Path.Combine(_dir, name + ".img");
        using (var f = new FileStream(image, FileMode.CreateNew)) f.SetLength(bytes);
        // Someone else's data: a filesystem the driver did not make, which it must never hand out or wipe.
        if (foreignFs is not null) HostCommand.Run("mkfs." + foreignFs, "-q", image);
        var device = HostCommand.Run("losetup", "--find", "--show", "--", image).Trim();
        _disks.Add((device, image));
        return device;
    }

    public string ImageOf(string device) => _disks.Single(d => d.Device == device).Image;

    /// <summary>Puts a different disk behind <paramref name="device"/>'s name, as a swapped drive would appear.</summary>
    public void Replace(string device, string newImage)
    {
        HostCommand.Run("losetup", "--detach", device);
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                HostCommand.Run("losetup", device, "--", newImage);
                break;
            }
            catch (InvalidOperationException) when (attempt < 20) { Thread.Sleep(100); }
        }
        var index = _disks.FindIndex(d => d.Device == device);
        _disks[index] = (device, newImage);
    }

    public string NewImage(string name, long bytes, string? fs = null)
    {
        var image = Path.Combine(_dir, name + ".img");
        using (var f = new FileStream(image, FileMode.CreateNew)) f.SetLength(bytes);
        if (fs is not null) HostCommand.Run("mkfs." + fs, "-q", image);
        return image;
    }

    /// <summary>What blkid finds on the disk now; empty when it is blank.</summary>
    public static string Probe(string device)
    {
        using var p = Process.Start(new ProcessStartInfo("blkid", ["--probe", "--output", "export", "--", device]) { RedirectStandardOutput = true })!;
        var output = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        return p.ExitCode == 2 ? "" : output;
    }

    private readonly List<string> _mounts = [];

    /// <summary>
    /// A fresh xfs (reflink on, mkfs.xfs's default) of <paramref name="bytes"/> (sparse) mounted at
    /// <paramref name="mountPoint"/>: a node state directory on the filesystem docs/deploy.md asks for, where the file
    /// and nbd pools cut snapshots of volumes in use by reflink. Unmounted on dispose, before the images go.
    /// </summary>
    public void MountXfs(string mountPoint, long bytes)
    {
        HostCommand.Run("mount", "-o", "loop", NewImage($"xfs-{_mounts.Count}", bytes, "xfs"), mountPoint);
        _mounts.Add(mountPoint);
    }

    public void Dispose()
    {
        foreach (var mount in _mounts) HostCommand.Quietly("umount", "-l", mount);
        foreach (var (device, _) in _disks)
        {
            HostCommand.Quietly("losetup", "--detach", device);
        }
        Directory.Delete(_dir, recursive: true);
    }
}
