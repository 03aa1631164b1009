using SolarCsi.Node.Processes;

namespace SolarCsi.Tests.Core;

public sealed class DaemonLogTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void ALogPastTheLimitKeepsOnlyItsNewestWholeLines()
    {
        var log = Path.Combine(_dir.Path, "nbdkit.log");
        var lines = Enumerable.Range(0, 40_000).Select(i => $"line {i:D6} nbdkit: error: something went wrong").ToArray();
        File.WriteAllLines(log, lines);
        Assert.True(new FileInfo(log).Length > DaemonLauncher.MaxLogBytes);

        DaemonLauncher.TrimLog(log);
        var kept = File.ReadAllLines(log);
        Assert.True(new FileInfo(log).Length <= DaemonLauncher.KeptLogBytes + 64);
        Assert.StartsWith("[log trimmed", kept[0]);
        Assert.Equal(lines[^1], kept[^1]);
        Assert.Equal(lines[^(kept.Length - 1)..], kept[1..]); // whole lines only, in order, ending with the newest

        var small = Path.Combine(_dir.Path, "small.log");
        File.WriteAllText(small, "one line\n");
        DaemonLauncher.TrimLog(small);
        DaemonLauncher.TrimLog(Path.Combine(_dir.Path, "missing.log"));
        Assert.Equal("one line\n", File.ReadAllText(small));
    }
}
