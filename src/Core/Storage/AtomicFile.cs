using System.Runtime.InteropServices;
using SolarCsi.Core.Interop;

namespace SolarCsi.Core.Storage;

/// <summary>Crash-safe file replacement: write a temp file, fsync it, rename over the target, fsync the directory.</summary>
public static partial class AtomicFile
{
    public static async Task WriteAsync(string path, byte[] content, CancellationToken ct, UnixFileMode mode = UnixFileMode.UserRead | UnixFileMode.UserWrite)
    {
        var dir = Path.GetDirectoryName(path)!;
        Directory.CreateDirectory(dir);
        var temp = Path.Combine(dir, $".{Path.GetFileName(path)}.{Guid.NewGuid():N}.tmp");
        try
        {
            await using (var stream = new FileStream(temp, new FileStreamOptions
            {
                Mode = FileMode.CreateNew, Access = FileAccess.Write, UnixCreateMode = mode,
            }))
            {
                await stream.WriteAsync(content, ct);
                await stream.FlushAsync(ct);
                stream.Flush(flushToDisk: true);
            }
            File.Move(temp, path, overwrite: true);
            FsyncDirectory(dir);
        }
        finally
        {
            if (File.Exists(temp)) File.Delete(temp);
        }
    }

    /// <summary>Deletes and makes the deletion durable.</summary>
    public static void Delete(string path)
    {
        if (!File.Exists(path)) return;
        File.Delete(path);
        FsyncDirectory(Path.GetDirectoryName(path)!);
    }

    /// <summary>Makes a rename or unlink in <paramref name="dir"/> durable (.NET cannot open a directory handle).</summary>
    private static void FsyncDirectory(string dir)
    {
        var fd = Libc.Open(dir, Libc.ReadOnly | Libc.Directory | Libc.CloseOnExec);
        if (fd < 0) throw new IOException($"open {dir} failed: errno {Marshal.GetLastPInvokeError()}");
        try
        {
            if (Libc.Fsync(fd) != 0) throw new IOException($"fsync {dir} failed: errno {Marshal.GetLastPInvokeError()}");
        }
        finally
        {
            _ = Libc.Close(fd);
        }
    }
}
