using SolarCsi.Node;
using SolarCsi.Node.Staging;

namespace SolarCsi.Tests.Deploy;

/// <summary>The node plugin's preStop hook waits while the node journal has entries, and no longer than its timeout.</summary>
public sealed class PreStopHookTests
{
    private static readonly TimeSpan Poll = TimeSpan.FromMilliseconds(50);

    private static JournalEntry Entry(string name, StagePhase phase = StagePhase.Staged) =>
        new($"file~default~n1~{name}", phase, $"/var/lib/kubelet/plugins/kubernetes.io/csi/solar.csi.dev/{name}/globalmount", "loop",
            "/x.img", "/dev/loop4", false, "ext4", true, false, [], []);

    private static NodeJournal JournalIn(TempDir dir) => new(new NodeStateLayout(dir.Path).Journal);

    [Fact]
    public async Task ReturnsAtOnceWhenNothingIsStagedOrTheStateDirDoesNotExist()
    {
        using var dir = new TempDir();
        var log = new StringWriter();
        Assert.Equal(PreStopHook.Outcome.NothingStaged,
            await PreStopHook.WaitAsync(Path.Combine(dir.Path, "missing"), TimeSpan.FromSeconds(30), Poll, log, CancellationToken.None));

        JournalIn(dir);
        var started = DateTime.UtcNow;
        Assert.Equal(PreStopHook.Outcome.NothingStaged, await PreStopHook.WaitAsync(dir.Path, TimeSpan.FromSeconds(30), Poll, log, CancellationToken.None));
        Assert.True(DateTime.UtcNow - started < TimeSpan.FromSeconds(5));
        Assert.Contains("no volume is staged", log.ToString());
    }

    [Fact]
    public async Task WaitsUntilTheLastEntryGoesIncludingOnesThatAppearWhileWaiting()
    {
        using var dir = new TempDir();
        var journal = JournalIn(dir);
        var first = Entry("v000000000000000000000001");
        var second = Entry("v000000000000000000000002", StagePhase.Staging);
        await journal.SaveAsync(first, CancellationToken.None);
        var log = new StringWriter();

        var wait = PreStopHook.WaitAsync(dir.Path, TimeSpan.FromSeconds(30), Poll, log, CancellationToken.None);
        await Task.Delay(300);
        Assert.False(wait.IsCompleted);
        // A stage that started just before the hook: the journal gains an entry while the first one goes.
        await journal.SaveAsync(second, CancellationToken.None);
        journal.Remove(first.VolumeId);
        await Task.Delay(300);
        Assert.False(wait.IsCompleted);
        journal.Remove(second.VolumeId);

        Assert.Equal(PreStopHook.Outcome.Drained, await wait.WaitAsync(TimeSpan.FromSeconds(10)));
        var text = log.ToString();
        Assert.Contains(first.VolumeId, text);
        Assert.Contains($"{second.VolumeId} (Staging, {second.StagingPath})", text);
        Assert.Contains("every volume is unstaged", text);
    }

    [Fact]
    public async Task GivesUpAtTheTimeoutAndSaysWhatIsStillStaged()
    {
        using var dir = new TempDir();
        var journal = JournalIn(dir);
        var stuck = Entry("v000000000000000000000003");
        await journal.SaveAsync(stuck, CancellationToken.None);
        var log = new StringWriter();

        var started = DateTime.UtcNow;
        Assert.Equal(PreStopHook.Outcome.TimedOut, await PreStopHook.WaitAsync(dir.Path, TimeSpan.FromMilliseconds(500), Poll, log, CancellationToken.None));
        var elapsed = DateTime.UtcNow - started;
        Assert.InRange(elapsed, TimeSpan.FromMilliseconds(450), TimeSpan.FromSeconds(5));
        Assert.Contains($"gave up after", log.ToString());
        Assert.Contains(stuck.VolumeId, log.ToString().Split('\n').Single(l => l.Contains("gave up")));
    }

    /// <summary>A plugin update under running pods: nothing is unstaged, so the hook stops at the idle time, not the timeout;
    /// while unstages keep coming (a drain, a shutdown) each one restarts the idle clock.</summary>
    [Fact]
    public async Task StopsWhenNothingIsUnstagedForTheIdleTimeButWaitsWhileUnstagesGoOn()
    {
        using var dir = new TempDir();
        var journal = JournalIn(dir);
        var entries = Enumerable.Range(1, 4).Select(i => Entry($"v00000000000000000000001{i}")).ToArray();
        foreach (var entry in entries) await journal.SaveAsync(entry, CancellationToken.None);
        var idle = TimeSpan.FromMilliseconds(1500);

        var log = new StringWriter();
        var started = DateTime.UtcNow;
        Assert.Equal(PreStopHook.Outcome.Idle, await PreStopHook.WaitAsync(dir.Path, TimeSpan.FromSeconds(30), Poll, log, CancellationToken.None, idle));
        Assert.InRange(DateTime.UtcNow - started, idle, TimeSpan.FromSeconds(10));
        Assert.Contains("stay staged for the next plugin", log.ToString());

        // Unstages every 300 ms (a fifth of the idle time): the hook waits through all of them, then finds the journal empty.
        var wait = PreStopHook.WaitAsync(dir.Path, TimeSpan.FromSeconds(30), Poll, new StringWriter(), CancellationToken.None, idle);
        foreach (var entry in entries)
        {
            await Task.Delay(300);
            Assert.False(wait.IsCompleted);
            journal.Remove(entry.VolumeId);
        }
        Assert.Equal(PreStopHook.Outcome.Drained, await wait.WaitAsync(TimeSpan.FromSeconds(10)));
    }

    [Fact]
    public async Task TempFilesAreNotEntriesButUnreadableEntriesStillCount()
    {
        using var dir = new TempDir();
        var journalDir = new NodeStateLayout(dir.Path).Journal;
        Directory.CreateDirectory(journalDir);
        // What AtomicFile leaves mid-write, and an unrelated file.
        await File.WriteAllTextAsync(Path.Combine(journalDir, ".file~default~n1~v1.json.0123.tmp"), "{");
        await File.WriteAllTextAsync(Path.Combine(journalDir, "README"), "x");
        Assert.Empty(PreStopHook.Pending(journalDir));

        await File.WriteAllTextAsync(Path.Combine(journalDir, "file~default~n1~v2.json"), "{ torn");
        var pending = Assert.Single(PreStopHook.Pending(journalDir));
        Assert.StartsWith("file~default~n1~v2.json (unreadable", pending);
    }

    [Fact]
    public async Task CommandLineExitsZeroWhetherDrainedOrTimedOutAndTwoOnBadFlags()
    {
        using var dir = new TempDir();
        var journal = JournalIn(dir);
        await journal.SaveAsync(Entry("v000000000000000000000004"), CancellationToken.None);
        var log = new StringWriter();

        Assert.Equal(0, await PreStopHook.RunAsync(["--state-dir", dir.Path, "--timeout-seconds", "0", "--poll-milliseconds", "10"], log));
        Assert.Contains("gave up", log.ToString());
        Assert.Equal(0, await PreStopHook.RunAsync([$"--state-dir={Path.Combine(dir.Path, "other")}"], log));
        Assert.Equal(2, await PreStopHook.RunAsync(["--state-dir", dir.Path, "--timeout", "5"], log));
        Assert.Contains("unknown flag --timeout", log.ToString());
    }
}
