using System.Diagnostics;
using Microsoft.Extensions.Logging.Abstractions;
using SolarCsi.Node.Processes;

namespace SolarCsi.SanityTests;

/// <summary>
/// A private Docker engine for the suite (no registry, no bridge, loopback only): its own data root, exec root
/// and socket, so nothing of a user's Docker is touched. Unavailable, with the reason, where dockerd is missing
/// or cannot start.
/// </summary>
internal sealed class TestDockerEngine : IAsyncDisposable
{
    private static readonly IProcessRunner Runner = new ProcessRunner(NullLogger<ProcessRunner>.Instance);
    private readonly string _dir;
    private Process? _daemon;

    private TestDockerEngine(string dir) => _dir = dir;

    public string Socket => Path.Combine(_dir, "docker.sock");
    public string Endpoint => "unix://" + Socket;
    public string? Unavailable { get; private set; }

    public static async Task<TestDockerEngine> StartAsync()
    {
        var engine = new TestDockerEngine(Directory.CreateTempSubdirectory("solar-docker-").FullName);
        await engine.LaunchAsync();
        return engine;
    }

    private async Task LaunchAsync()
    {
        var dockerd = new[] { "/usr/bin/dockerd", "/usr/sbin/dockerd" }.FirstOrDefault(File.Exists);
        if (dockerd is null) { Unavailable = "dockerd is not installed (apt-get install docker.io)"; return; }
        var info = new ProcessStartInfo(dockerd, [
            "--bridge=none", "--iptables=false", "--ip6tables=false", "--storage-driver=overlay2",
            "--data-root", Path.Combine(_dir, "data"), "--exec-root", Path.Combine(_dir, "exec"), "-H", Endpoint,
            "--pidfile", Path.Combine(_dir, "docker.pid"),
        ]) { RedirectStandardOutput = true, RedirectStandardError = true };
        _daemon = Process.Start(info)!;
        _daemon.OutputDataReceived += (_, _) => { };
        _daemon.ErrorDataReceived += (_, _) => { };
        _daemon.BeginOutputReadLine();
        _daemon.BeginErrorReadLine();
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (DateTime.UtcNow < deadline)
        {
            if (_daemon.HasExited) { Unavailable = $"dockerd exited with code {_daemon.ExitCode} at start"; return; }
            var version = await Runner.RunAsync("docker", ["-H", Endpoint, "version", "--format", "{{.Server.APIVersion}}"], CancellationToken.None,
                TimeSpan.FromSeconds(10), okExitCodes: [0, 1]);
            if (version.ExitCode == 0) return;
            await Task.Delay(200);
        }
        Unavailable = "dockerd did not answer within 30 s";
    }

    public async ValueTask DisposeAsync()
    {
        if (_daemon is { HasExited: false })
        {
            _daemon.Kill();
            using var wait = new CancellationTokenSource(TimeSpan.FromSeconds(20));
            try { await _daemon.WaitForExitAsync(wait.Token); } catch (OperationCanceledException) { _daemon.Kill(entireProcessTree: true); }
        }
        _daemon?.Dispose();
        // dockerd leaves its network namespace mounted under the exec root.
        foreach (var mount in SolarCsi.Node.Mounts.MountInfoParser.Parse(await File.ReadAllTextAsync("/proc/self/mountinfo"))
                     .Where(m => m.MountPoint.StartsWith(_dir + "/", StringComparison.Ordinal)).Select(m => m.MountPoint).OrderByDescending(m => m.Length))
            await Runner.RunAsync("umount", ["-l", mount], CancellationToken.None, TimeSpan.FromSeconds(30), okExitCodes: [0, 32]);
        Directory.Delete(_dir, recursive: true);
    }
}
