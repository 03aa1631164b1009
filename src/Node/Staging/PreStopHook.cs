using SolarCsi.Core.Storage;
using SolarCsi.Core.Hosting;

namespace SolarCsi.Node.Staging;

/// <summary>
/// <c>solar-node prestop --state-dir DIR [--timeout-seconds N]</c>: the node DaemonSet's preStop hook. While a
/// node is drained or shut down, kubelet still has to unpublish and unstage the volumes of the pods it is tearing
/// down, and only this plugin can do that. If the plugin went first, those volumes would stay mounted and
/// attached (and NBD writers would keep their exports). So the hook holds the container while the node journal
/// has entries — one per volume staged, being staged or being unstaged here — polling until it is empty, and
/// gives up at the timeout. It exits 0 either way: a failed hook gets the container killed all the same, only
/// with less said about why.
/// </summary>
public static class PreStopHook
{
    public const string Command = "prestop";

    public static readonly IReadOnlyDictionary<string, string> Flags = new Dictionary<string, string>
    {
        ["state-dir"] = "the node plugin's --state-dir (default /var/lib/solar-csi)",
        ["timeout-seconds"] = "give up waiting after this long (default 300); keep it below the pod's terminationGracePeriodSeconds",
        ["poll-milliseconds"] = "how often the journal is looked at (default 2000)",
    };

    public enum Outcome { NothingStaged, Drained, TimedOut }

    /// <summary>Parses the hook's flags and waits; the exit code is 0 except for a malformed command line.</summary>
    public static async Task<int> RunAsync(IReadOnlyList<string> args, TextWriter log)
    {
        string stateDir;
        TimeSpan timeout, poll;
        try
        {
            var cl = new CommandLine(args, Flags);
            if (cl.HelpRequested) { await log.WriteLineAsync(cl.Usage($"solar-node {Command}")); return 0; }
            stateDir = Path.GetFullPath(cl.Get("state-dir", "/var/lib/solar-csi"));
            timeout = TimeSpan.FromSeconds(cl.GetInt("timeout-seconds", 300));
            poll = TimeSpan.FromMilliseconds(cl.GetInt("poll-milliseconds", 2000));
            if (timeout < TimeSpan.Zero || poll <= TimeSpan.Zero) throw new FormatException("timeout and poll interval must be positive");
        }
        catch (FormatException e)
        {
            await log.WriteLineAsync($"solar-node {Command}: {e.Message}");
            return 2;
        }
        await WaitAsync(stateDir, timeout, poll, log, CancellationToken.None);
        return 0;
    }

    /// <summary>Where Program.cs puts the node journal: <c>NodeJournal(STATE-DIR/node)</c>.</summary>
    public static string JournalDirectory(string stateDir) => NodeJournal.DirectoryOf(Path.Combine(stateDir, "node"));

    public static async Task<Outcome> WaitAsync(string stateDir, TimeSpan timeout, TimeSpan poll, TextWriter log, CancellationToken ct)
    {
        var dir = JournalDirectory(stateDir);
        var started = DateTime.UtcNow;
        var pending = Pending(dir);
        if (pending.Count == 0)
        {
            await log.WriteLineAsync($"prestop: no volume is staged on this node ({dir}); stopping now");
            return Outcome.NothingStaged;
        }
        await log.WriteLineAsync($"prestop: waiting up to {timeout.TotalSeconds:0} s for {Describe(pending)}");
        var lastReport = started;
        while (true)
        {
            var elapsed = DateTime.UtcNow - started;
            if (elapsed >= timeout)
            {
                await log.WriteLineAsync($"prestop: gave up after {elapsed.TotalSeconds:0} s; still staged: {Describe(pending)}");
                return Outcome.TimedOut;
            }
            await Task.Delay(Min(poll, timeout - elapsed), ct);
            var now = Pending(dir);
            if (now.Count == 0)
            {
                await log.WriteLineAsync($"prestop: every volume is unstaged after {(DateTime.UtcNow - started).TotalSeconds:0} s; stopping now");
                return Outcome.Drained;
            }
            // Say something when the set changes, and every 30 s regardless, so a stuck volume is visible in the log.
            if (!now.SequenceEqual(pending) || DateTime.UtcNow - lastReport >= TimeSpan.FromSeconds(30))
            {
                await log.WriteLineAsync($"prestop: still waiting for {Describe(now)}");
                lastReport = DateTime.UtcNow;
            }
            pending = now;
        }
    }

    /// <summary>
    /// One line per journal entry: its volume id, phase and staging path. The journal's own temp files (dot files)
    /// are not entries; an entry that cannot be read still counts — an unreadable record is no proof the volume
    /// is gone.
    /// </summary>
    public static IReadOnlyList<string> Pending(string journalDir)
    {
        if (!Directory.Exists(journalDir)) return [];
        var lines = new List<string>();
        foreach (var path in Directory.EnumerateFiles(journalDir, "*.json").Where(p => !Path.GetFileName(p).StartsWith('.')).Order(StringComparer.Ordinal))
        {
            try
            {
                // An unreadable entry is set aside by the read and listed below with the others set aside.
                if (NodeJournal.Read(path) is { } entry) lines.Add($"{entry.VolumeId} ({entry.Phase}, {entry.StagingPath})");
            }
            catch (IOException)
            {
                // Removed between listing and reading: gone.
            }
        }
        foreach (var aside in Directory.EnumerateFiles(journalDir, "*.json" + StateFiles.UnreadableSuffix).Order(StringComparer.Ordinal))
            lines.Add($"{Path.GetFileName(StateFiles.OriginalOf(aside))} (unreadable: set aside as {Path.GetFileName(aside)})");
        return lines;
    }

    /// <summary>
    /// Standard output, and also the container's main process's stderr where the plugin logs: kubelet keeps no
    /// output of an exec hook, so without this `kubectl logs` would never say what a drain waited for.
    /// </summary>
    public static TextWriter LogWriter()
    {
        var console = Console.Out;
        if (Environment.ProcessId == 1) return console;
        try
        {
            var main = new StreamWriter(new FileStream("/proc/1/fd/2", FileMode.Open, FileAccess.Write)) { AutoFlush = true };
            return new TeeWriter(console, main);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return console;
        }
    }

    private sealed class TeeWriter(TextWriter first, TextWriter second) : TextWriter
    {
        public override System.Text.Encoding Encoding => first.Encoding;
        public override void Write(char value) { first.Write(value); second.Write(value); }
        public override void Write(string? value) { first.Write(value); second.Write(value); }
        public override void WriteLine(string? value) { first.WriteLine(value); second.WriteLine(value); }
        public override Task WriteLineAsync(string? value) { WriteLine(value); return Task.CompletedTask; }
        public override void Flush() { first.Flush(); second.Flush(); }
    }

    private static string Describe(IReadOnlyList<string> pending) =>
        $"{pending.Count} volume{(pending.Count == 1 ? "" : "s")}: {string.Join("; ", pending)}";

    private static TimeSpan Min(TimeSpan a, TimeSpan b) => a < b ? a : b;
}
