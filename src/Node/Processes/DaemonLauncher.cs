using SolarCsi.Core.Errors;

namespace SolarCsi.Node.Processes;

/// <summary>
/// Starts long-lived helpers (nbdkit, nbdfuse) in their own session so they outlive a plugin restart, with
/// stdio on a log file rather than on pipes that would break with the plugin, and waits for their readiness.
/// The shell line is a constant: program and arguments travel as positional parameters, never spliced into a
/// string. Who actually starts them — this process or the node's data-plane host — is the spawner's business.
/// </summary>
public sealed class DaemonLauncher(IDaemonSpawner spawner)
{
    public DaemonLauncher(IProcessRunner runner, IReadOnlyList<string>? environment = null) : this(new LocalDaemonSpawner(runner, environment)) { }

    public static IReadOnlyList<string> Arguments(string logFile, string program, IReadOnlyList<string> args, IReadOnlyList<string>? environment = null) =>
        [.. environment ?? [], "SOLAR_DAEMON_LOG=" + logFile, "setsid", "--fork", "sh", "-c", ShellLine, program, .. args];

    /// <summary>
    /// The daemon is exec'd only once setsid, its parent, has exited (at most 3 s): the daemon turned out to carry a
    /// parent-death signal (where it is armed was not pinned down), so a setsid that lingered under load past the
    /// daemon's start sent it SIGTERM on exit — exports died
    /// silently right after writing their pid file (kernel trace: signal_generate sig=15 from setsid to nbdkit; about one
    /// start in 500 idle, dozens at 100 publishes in flight). Builtins only: no process per check.
    /// </summary>
    private const string ShellLine =
        "n=0; while [ $n -lt 300 ]; do read -r _ _ _ p _ < /proc/$$/stat; c=; read -r c 2>/dev/null < /proc/$p/comm; " +
        "[ \"$c\" = setsid ] || break; sleep 0.01; n=$((n+1)); done; " +
        "exec \"$0\" \"$@\" </dev/null >>\"$SOLAR_DAEMON_LOG\" 2>&1";

    public const long MaxLogBytes = 1 << 20;
    public const int KeptLogBytes = 256 << 10;

    /// <summary>
    /// Bounds a daemon's log across restarts: the helpers log only errors, but an export restarted for every fence
    /// over months appends for ever. Past <see cref="MaxLogBytes"/> only the last <see cref="KeptLogBytes"/> are kept
    /// (the newest lines are the ones that explain the next failure).
    /// </summary>
    public static void TrimLog(string logFile)
    {
        var info = new FileInfo(logFile);
        if (!info.Exists || info.Length <= MaxLogBytes) return;
        var tail = new byte[KeptLogBytes];
        using (var stream = new FileStream(logFile, FileMode.Open, FileAccess.Read))
        {
            stream.Seek(-KeptLogBytes, SeekOrigin.End);
            stream.ReadExactly(tail);
        }
        var firstLine = Array.IndexOf(tail, (byte)'\n') + 1;
        File.WriteAllBytes(logFile, [.. System.Text.Encoding.ASCII.GetBytes($"[log trimmed to its last {KeptLogBytes >> 10} KiB]\n"), .. tail.AsSpan(firstLine)]);
    }

    /// <summary>Starts the daemon and waits until it writes <paramref name="pidFile"/> (its own readiness signal).</summary>
    public async Task<int> StartAsync(string program, IReadOnlyList<string> args, string pidFile, string logFile, TimeSpan readyTimeout, CancellationToken ct)
    {
        TrimLog(logFile);
        if (File.Exists(pidFile)) File.Delete(pidFile);
        await spawner.SpawnAsync(program, args, logFile, ct);
        var deadline = DateTime.UtcNow + readyTimeout;
        while (DateTime.UtcNow < deadline)
        {
            if (Pid.Read(pidFile) is { } pid) return pid;
            await Task.Delay(20, ct);
        }
        var tail = File.Exists(logFile) ? string.Join('\n', File.ReadLines(logFile).TakeLast(5)) : "";
        // Not INTERNAL: nothing is wrong with the request or with us; the helper (or what it connects to) could not
        // start now, and the caller's retry may find it can. Its own last words say why.
        throw CsiErrors.Unavailable($"{program} did not become ready within {readyTimeout.TotalSeconds:0} s: {tail}");
    }
}
