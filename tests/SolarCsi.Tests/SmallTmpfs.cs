namespace SolarCsi.Tests;

/// <summary>
/// A tmpfs of a few KiB or MiB mounted at <paramref name="path"/> (needs root): a filesystem a test can fill to the
/// last byte. Unmounted (lazily, so a process a failed test left behind cannot keep it) on dispose.
/// </summary>
internal sealed class SmallTmpfs : IDisposable
{
    public SmallTmpfs(string path, string size)
    {
        Path = path;
        Directory.CreateDirectory(path);
        HostCommand.Run("mount", "-t", "tmpfs", "-o", "size=" + size, "solar-test-tmpfs", path);
    }

    public string Path { get; }

    /// <summary>Writes a filler file until the filesystem refuses another block, as a runaway log would.</summary>
    public void Fill()
    {
        using var filler = new FileStream(System.IO.Path.Combine(Path, "filler"), FileMode.Create);
        var block = new byte[4096];
        try { while (true) filler.Write(block); }
        catch (IOException) { }
    }

    public void Dispose() => HostCommand.Run("umount", "-l", Path);
}
