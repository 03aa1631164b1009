namespace SolarCsi.Node.Processes;

/// <summary>
/// Who starts a long-lived helper. Locally (<see cref="LocalDaemonSpawner"/>) the helper joins the caller's container,
/// so it outlives a restart of the plugin process but not of its container; through the node's data-plane host
/// (<c>Node/DataPlane/DataPlaneSpawner</c>) it belongs to that host's container and outlives the plugin's too.
/// Either way the helper runs the same command line (<see cref="DaemonLauncher.Arguments"/>) and reports readiness
/// through its own pid file, which the caller waits for.
/// </summary>
public interface IDaemonSpawner
{
    Task SpawnAsync(string program, IReadOnlyList<string> args, string logFile, CancellationToken ct);
}

/// <summary>Starts helpers from this process (setsid, own session, stdio on the log file).</summary>
public sealed class LocalDaemonSpawner(IProcessRunner runner, IReadOnlyList<string>? environment = null) : IDaemonSpawner
{
    /// <summary>"NAME=value" assignments every helper gets (the TLS cipher policy).</summary>
    public IReadOnlyList<string> Environment { get; } = environment ?? [];

    public async Task SpawnAsync(string program, IReadOnlyList<string> args, string logFile, CancellationToken ct)
    {
        // The shell line would only say "exec: not found" into the helper's log; say which package is missing instead.
        HostTools.Require(program);
        await runner.RunAsync("env", DaemonLauncher.Arguments(logFile, program, args, Environment), ct, TimeSpan.FromSeconds(30));
    }
}
