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
        using var small = new SmallTmpfs(Path.Combine(dir.Path, "small"), "64k");
        var mnt = small.Path;
        var journal = Path.Combine(mnt, "v1.json");
        var previous = "{\"phase\":\"Staged\"}"u8.ToArray();
        await AtomicFile.WriteAsync(journal, previous, CancellationToken.None);
        small.Fill();

        var next = new byte[32 << 10];
        await Assert.ThrowsAnyAsync<IOException>(() => AtomicFile.WriteAsync(journal, next, CancellationToken.None));

        Assert.Equal(previous, await File.ReadAllBytesAsync(journal));
        Assert.Equal(new[] { "filler", "v1.json" }, Directory.EnumerateFiles(mnt).Select(f => Path.GetFileName(f)).Order().ToArray());
        // Once space is back, the same write goes through.
        File.Delete(Path.Combine(mnt, "filler"));
        await AtomicFile.WriteAsync(journal, next, CancellationToken.None);
        Assert.Equal(next, await File.ReadAllBytesAsync(journal));
    }
}
