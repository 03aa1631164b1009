using System.Diagnostics;
using SolarCsi.Core.Storage;

namespace SolarCsi.Tests.Core;

/// <summary>
/// The node journal and the export registry are written with <see cref="AtomicFile"/>. When the state directory's
/// filesystem is full, a write must fail loudly and leave the previous version whole: a half-written journal
/// would lose track of a staged volume.
/// </summary>
public sealed class AtomicFileDiskFullTests
{
    [SkippableFact]
    public async Task AFullFilesystemFailsTheWriteAndKeepsThePreviousVersion()
    {
        Skip.IfNot(Environment.UserName == "root", "mounting a tiny tmpfs needs root");
        using var dir = new TempDir();
        var mnt = Path.Combine(dir.Path, "small");
        Directory.CreateDirectory(mnt);
        Run("mount", "-t", "tmpfs", "-o", "size=64k", "solar-test-full", mnt);
        try
        {
            var journal = Path.Combine(mnt, "v1.json");
            var previous = "{\"phase\":\"Staged\"}"u8.ToArray();
            await AtomicFile.WriteAsync(journal, previous, CancellationToken.None);
            // Fill what is left, as a runaway log on the node would.
            await using (var filler = new FileStream(Path.Combine(mnt, "filler"), FileMode.Create))
            {
                var block = new byte[4096];
                try { while (true) filler.Write(block); }
                catch (IOException) { }
            }

            var next = new byte[32 << 10];
            await Assert.ThrowsAnyAsync<IOException>(() => AtomicFile.WriteAsync(journal, next, CancellationToken.None));

            Assert.Equal(previous, await File.ReadAllBytesAsync(journal));
            Assert.Equal(new[] { "filler", "v1.json" }, Directory.EnumerateFiles(mnt).Select(f => Path.GetFileName(f)).Order().ToArray());
            // Once space is back, the same write goes through.
            File.Delete(Path.Combine(mnt, "filler"));
            await AtomicFile.WriteAsync(journal, next, CancellationToken.None);
            Assert.Equal(next, await File.ReadAllBytesAsync(journal));
        }
        finally
        {
            Run("umount", mnt);
        }
    }

    private static void Run(string program, params string[] args)
    {
        using var p = Process.Start(new ProcessStartInfo(program, args) { RedirectStandardError = true })!;
        p.WaitForExit();
        if (p.ExitCode != 0) throw new InvalidOperationException($"{program} failed: {p.StandardError.ReadToEnd()}");
    }
}
