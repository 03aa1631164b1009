using System.Text;
using Microsoft.Extensions.Logging;
using SolarCsi.Core.Diagnostics;
using SolarCsi.Core.Errors;
using SolarCsi.Core.Storage;
using SolarCsi.Node.Processes;

namespace SolarCsi.Node.Attach;

/// <summary>
/// NBD through the kernel's nbd driver, for production nodes that have the module: a local nbdkit proxy on a
/// unix socket does the TLS-PSK to the export, and nbd-client hands that socket to /dev/nbdN. The kernel keeps no
/// trace of which volume a device serves (sysfs's pid is nbd-client's, which has exited; "backend" is empty with
/// Debian's nbd-client), so the volume's folder records it: "device.pending" before nbd-client runs, "device" once it
/// connected.
/// </summary>
public sealed class NbdKernelAttacher(IProcessRunner runner, DaemonLauncher launcher, ILogger<NbdKernelAttacher> logger,
    string sysBlock = "/sys/block", string procNetUnix = "/proc/net/unix") : IBlockAttacher
{
    private readonly SemaphoreSlim _deviceGate = new(1, 1);

    public string Kind => "nbd";
    public IReadOnlyList<string> RequiredTools { get; } = ["nbd-client"];

    /// <summary>Whether this node can attach NBD in the kernel: the module is loaded and devices exist.</summary>
    public static bool IsSupported(string sysBlock = "/sys/block") =>
        Directory.Exists("/sys/module/nbd") && Directory.Exists(Path.Combine(sysBlock, "nbd0"));

    private static string SocketPath(string source) => Path.Combine(source, "proxy.sock");
    private static string ProxyPid(string source) => Path.Combine(source, "proxy.pid");
    private static string DeviceFile(string source) => Path.Combine(source, "device");
    private static string PendingFile(string source) => Path.Combine(source, "device.pending");

    public Task<string?> FindAttachedAsync(string source, CancellationToken ct)
    {
        // The device we recorded is ours only while it is still connected (sysfs shows a client pid).
        if (ReadDevice(DeviceFile(source)) is { } device && IsConnected(device)) return Task.FromResult<string?>(device);
        // A crash between nbd-client and the record leaves only the device we were about to connect. It is ours if it
        // is connected, our proxy has a client, and no nbd-client of ours is still at work: devices are chosen and
        // connected one at a time, so another volume could have taken that device only while it was free, and then our
        // proxy would have had no client. Read-only: callers without the volume's slot (health checks) use it too;
        // AttachAsync records what it adopts.
        return Task.FromResult(ReadDevice(PendingFile(source)) is { } pending && IsConnected(pending) && ProxyHasClient(source) &&
                               LingeringClients(source).Count == 0
            ? pending
            : null);
    }

    public async Task<string> AttachAsync(string source, bool readOnly, CancellationToken ct)
    {
        // An nbd-client a crashed plugin left still connecting could finish under us: it goes before we decide.
        if (File.Exists(PendingFile(source)))
            foreach (var client in LingeringClients(source)) await Pid.StopAsync(client, kill: true, TimeSpan.FromSeconds(5), ct, "nbd-client", SocketPath(source));
        if (await FindAttachedAsync(source, ct) is { } existing)
        {
            if (ReadDevice(DeviceFile(source)) != existing)
            {
                await RecordAsync(source, existing, ct);
                logger.LogWarning("adopted {Device} for {Source}: connected before a restart, not yet recorded", existing, source);
            }
            return existing;
        }
        var endpoint = NbdClientDirectory.Read(source);
        if (!(Pid.Read(ProxyPid(source)) is { } pid && Pid.IsRunning(pid, "nbdkit", ProxyPid(source))))
            await launcher.StartAsync("nbdkit", ProxyArguments(source, endpoint), ProxyPid(source), Path.Combine(source, "proxy.log"), TimeSpan.FromSeconds(10), ct);
        // Choosing a free device and connecting it is one step for the whole node: two volumes staged at once must
        // never pick the same /dev/nbdN. The device is recorded only once it is really ours.
        string device;
        await _deviceGate.WaitAsync(ct);
        try
        {
            device = FreeDevice() ?? throw CsiErrors.ResourceExhausted("no free /dev/nbd device on this node");
            await AtomicFile.WriteAsync(PendingFile(source), Encoding.ASCII.GetBytes(device), ct);
            try
            {
                await runner.RunAsync("nbd-client", ClientArguments(SocketPath(source), device, endpoint.ReadOnly), ct, TimeSpan.FromSeconds(30));
            }
            catch
            {
                AtomicFile.Delete(PendingFile(source));
                throw;
            }
            FaultPoints.Hit("nbd:after-connect");
        }
        finally
        {
            _deviceGate.Release();
        }
        await RecordAsync(source, device, ct);
        logger.LogInformation("attached {Source} as {Device}", source, device);
        return device;
    }

    /// <summary>nbd-client processes still running for this volume's proxy socket (left by a plugin that died mid-attach).</summary>
    private static IReadOnlyList<int> LingeringClients(string source)
    {
        var socket = SocketPath(source);
        return Directory.EnumerateDirectories("/proc")
            .Select(d => int.TryParse(Path.GetFileName(d), out var pid) ? pid : 0)
            .Where(pid => pid > 0 && Pid.IsRunning(pid, "nbd-client", socket))
            .ToArray();
    }

    private static async Task RecordAsync(string source, string device, CancellationToken ct)
    {
        await AtomicFile.WriteAsync(DeviceFile(source), Encoding.ASCII.GetBytes(device), ct);
        AtomicFile.Delete(PendingFile(source));
    }

    private static string? ReadDevice(string file) =>
        File.Exists(file) && File.ReadAllText(file).Trim() is { Length: > 0 } device && device.StartsWith("/dev/nbd", StringComparison.Ordinal) ? device : null;

    /// <summary>
    /// Whether the proxy has accepted a connection on its socket that is still open (/proc/net/unix lists an accepted
    /// socket with its listener's path, state 03 = connected): the kernel device's, once nbd-client has exited.
    /// </summary>
    private bool ProxyHasClient(string source)
    {
        var socket = SocketPath(source);
        try
        {
            return File.ReadLines(procNetUnix).Skip(1).Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries))
                .Any(f => f.Length >= 8 && f[5] == "03" && f[7] == socket);
        }
        catch (IOException)
        {
            return false;
        }
    }

    public static IReadOnlyList<string> ProxyArguments(string source, NbdEndpoint endpoint)
    {
        var proxy = NbdClientDirectory.ProxyArguments(source, endpoint);
        // proxy[0] is the program; the server flags go before the plugin name.
        List<string> args = ["--foreground", "--pidfile", ProxyPid(source), "--unix", SocketPath(source)];
        if (endpoint.ReadOnly) args.Add("--readonly");
        args.AddRange(proxy.Skip(1));
        return args;
    }

    public static IReadOnlyList<string> ClientArguments(string socket, string device, bool readOnly)
    {
        List<string> args = ["-unix", socket, device, "-block-size", "4096", "-timeout", "30"];
        if (readOnly) args.Add("-readonly");
        return args;
    }

    public async Task DetachAsync(string device, string source, CancellationToken ct)
    {
        if (await FindAttachedAsync(source, ct) == device)
            await runner.RunAsync("nbd-client", ["-d", device], ct, TimeSpan.FromSeconds(30));
        if (Pid.Read(ProxyPid(source)) is { } pid && Pid.IsRunning(pid, "nbdkit", ProxyPid(source)))
            await Pid.StopAsync(pid, kill: false, TimeSpan.FromSeconds(5), ct, "nbdkit", ProxyPid(source));
        if (File.Exists(DeviceFile(source))) File.Delete(DeviceFile(source));
        if (File.Exists(PendingFile(source))) File.Delete(PendingFile(source));
    }

    public Task RefreshCapacityAsync(string device, CancellationToken ct) =>
        throw CsiErrors.FailedPrecondition($"{device}: an NBD device learns a new size only when it reconnects; unstage and stage the volume");

    public Task<string?> CheckAsync(string device, string source, CancellationToken ct) => Task.FromResult(Check(device, source));

    private string? Check(string device, string source)
    {
        if (!IsConnected(device)) return $"{device} is disconnected";
        if (!(Pid.Read(ProxyPid(source)) is { } pid && Pid.IsRunning(pid, "nbdkit", ProxyPid(source)))) return "the local NBD proxy is not running";
        var endpoint = NbdClientDirectory.Read(source);
        return SolarCsi.Node.Nbd.ProxyConnection.Problem(pid, endpoint.Host, endpoint.Port);
    }

    private bool IsConnected(string device) => File.Exists(Path.Combine(sysBlock, Path.GetFileName(device), "pid"));

    private string? FreeDevice() =>
        Directory.Exists(sysBlock)
            ? Directory.EnumerateDirectories(sysBlock, "nbd*")
                .Select(Path.GetFileName).OfType<string>()
                .OrderBy(n => int.TryParse(n[3..], out var i) ? i : int.MaxValue)
                .Where(n => !File.Exists(Path.Combine(sysBlock, n, "pid")))
                .Select(n => "/dev/" + n).FirstOrDefault()
            : null;
}
