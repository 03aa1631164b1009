using Microsoft.Extensions.Logging;
using SolarCsi.Core.Errors;
using SolarCsi.Core.Processes;

namespace SolarCsi.Node.Attach;

/// <summary>
/// NBD through the kernel's nbd driver, for production nodes that have the module: a local nbdkit proxy on a
/// unix socket does the TLS-PSK to the export, and nbd-client hands that socket to /dev/nbdN. The device is
/// identified by the proxy it is connected through (its pid in sysfs belongs to nbd-client for this volume).
/// </summary>
public sealed class NbdKernelAttacher(IProcessRunner runner, DaemonLauncher launcher, ILogger<NbdKernelAttacher> logger,
    string sysBlock = "/sys/block") : IBlockAttacher
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

    public Task<string?> FindAttachedAsync(string source, CancellationToken ct)
    {
        // The device we recorded is ours only while it is still connected (sysfs shows a client pid).
        var device = File.Exists(DeviceFile(source)) ? File.ReadAllText(DeviceFile(source)).Trim() : null;
        return Task.FromResult(device is not null && IsConnected(device) ? device : null);
    }

    public async Task<string> AttachAsync(string source, bool readOnly, CancellationToken ct)
    {
        if (await FindAttachedAsync(source, ct) is { } existing) return existing;
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
            await runner.RunAsync("nbd-client", ClientArguments(SocketPath(source), device, endpoint.ReadOnly), ct, TimeSpan.FromSeconds(30));
        }
        finally
        {
            _deviceGate.Release();
        }
        await File.WriteAllTextAsync(DeviceFile(source), device, ct);
        logger.LogInformation("attached {Source} as {Device}", source, device);
        return device;
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
    }

    public Task RefreshCapacityAsync(string device, CancellationToken ct) =>
        throw CsiErrors.FailedPrecondition($"{device}: an NBD device learns a new size only when it reconnects; unstage and stage the volume");

    public Task<string?> CheckAsync(string device, string source, CancellationToken ct) => Task.FromResult(Check(device, source));

    private string? Check(string device, string source)
    {
        if (!IsConnected(device)) return $"{device} is disconnected";
        if (!(Pid.Read(ProxyPid(source)) is { } pid && Pid.IsRunning(pid, "nbdkit", ProxyPid(source)))) return "the local NBD proxy is not running";
        var endpoint = NbdClientDirectory.Read(source);
        return Core.Nbd.ProxyConnection.Problem(pid, endpoint.Host, endpoint.Port);
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
