using SolarCsi.Core.Hosting;
using SolarCsi.Core.Storage;
using SolarCsi.Node.Processes;

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
        ["idle-seconds"] = "stop waiting when no volume has been staged or unstaged for this long: the pods are still running, so this " +
                           "is a restart or an update of the plugin, and the next one adopts the volumes (default 30, 0 = wait to the timeout)",
    };

    public enum Outcome { NothingStaged, Drained, TimedOut, Idle }

    /// <summary>Parses the hook's flags and waits; the exit code is 0 except for a malformed command line.</summary>
    /// <param name="log">where the hook reports (default: <see cref="LogWriter"/> for the plugin of the state dir).</param>
    public static async Task<int> RunAsync(IReadOnlyList<string> args, TextWriter? log = null)
    {
        string stateDir;
        TimeSpan timeout, poll, idle;
        try
        {
            var cl = new CommandLine(args, Flags);
            if (cl.HelpRequested) { await (log ?? Console.Out).WriteLineAsync(cl.Usage($"solar-node {Command}")); return 0; }
            stateDir = Path.GetFullPath(cl.Get("state-dir", "/var/lib/solar-csi"));
            timeout = TimeSpan.FromSeconds(cl.GetInt("timeout-seconds", 300));
            poll = TimeSpan.FromMilliseconds(cl.GetInt("poll-milliseconds", 2000));
            idle = TimeSpan.FromSeconds(cl.GetInt("idle-seconds", 30));
            if (timeout < TimeSpan.Zero || poll <= TimeSpan.Zero || idle < TimeSpan.Zero)
                throw new FormatException("timeout, poll interval and idle time must be positive");
        }
        catch (FormatException e)
        {
            await (log ?? Console.Error).WriteLineAsync($"solar-node {Command}: {e.Message}");
            return 2;
        }
        await WaitAsync(stateDir, timeout, poll, log ?? LogWriter(stateDir), CancellationToken.None, idle == TimeSpan.Zero ? null : idle);
        return 0;
    }

    /// <param name="idle">
    /// With the data plane in its own DaemonSet, a DaemonSet update restarts this container under running pods: their
    /// volumes stay staged and the next plugin adopts them, so waiting for them would only hold every node's update for
    /// the whole timeout. A node going down or a drain shows itself by unstages; when the journal has not changed for
    /// this long, nothing is being torn down and the hook stops waiting.
    /// </param>
    public static async Task<Outcome> WaitAsync(string stateDir, TimeSpan timeout, TimeSpan poll, TextWriter log, CancellationToken ct,
        TimeSpan? idle = null)
    {
        var dir = new NodeStateLayout(stateDir).Journal;
        var started = DateTime.UtcNow;
        var pending = Pending(dir);
        if (pending.Count == 0)
        {
            await log.WriteLineAsync($"prestop: no volume is staged on this node ({dir}); stopping now");
            return Outcome.NothingStaged;
        }
        await log.WriteLineAsync($"prestop: waiting up to {timeout.TotalSeconds:0} s for {Describe(pending)}");
        var lastReport = started;
        var lastChange = started;
        while (true)
        {
            var elapsed = DateTime.UtcNow - started;
            if (elapsed >= timeout)
            {
                await log.WriteLineAsync($"prestop: gave up after {elapsed.TotalSeconds:0} s; still staged: {Describe(pending)}");
                return Outcome.TimedOut;
            }
            if (idle is { } quiet && DateTime.UtcNow - lastChange >= quiet)
            {
                await log.WriteLineAsync($"prestop: nothing was staged or unstaged for {quiet.TotalSeconds:0} s, so no pod is being torn down " +
                                         $"(a restart or update of the plugin); stopping now, the volumes stay staged for the next plugin: {Describe(pending)}");
                return Outcome.Idle;
            }
            await Task.Delay(Min(poll, timeout - elapsed), ct);
            var now = Pending(dir);
            if (now.Count == 0)
            {
                await log.WriteLineAsync($"prestop: every volume is unstaged after {(DateTime.UtcNow - started).TotalSeconds:0} s; stopping now");
                return Outcome.Drained;
            }
            // Say something when the set changes, and every 30 s regardless, so a stuck volume is visible in the log.
            if (!now.SequenceEqual(pending)) lastChange = DateTime.UtcNow;
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
    /// Standard output, and also the plugin's stderr, which is what `kubectl logs` shows: kubelet keeps no output of
    /// an exec hook, so without this nobody would see what a drain waited for. The plugin is found by the pid it
    /// wrote at start, checked to be a plugin of this state dir: the pod shares the host's pid namespace, so the
    /// container's main process is not pid 1 (pid 1 is the host's init).
    /// </summary>
    public static TextWriter LogWriter(string stateDir)
    {
        var console = Console.Out;
        if (!(Pid.Read(new NodeStateLayout(stateDir).PluginPidFile) is { } pid && pid != Environment.ProcessId && Pid.CommandLine(pid) is { } argv &&
              argv.Any(a => a.Contains(stateDir, StringComparison.Ordinal)) && !argv.Contains(Command)))
            return console;
        try
        {
            var main = new StreamWriter(new FileStream($"/proc/{pid}/fd/2", FileMode.Open, FileAccess.Write)) { AutoFlush = true };
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
