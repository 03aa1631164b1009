using Microsoft.Extensions.Logging;
using SolarCsi.Node.Devices;
using SolarCsi.Node.Mounts;
using SolarCsi.Node.Processes;

namespace SolarCsi.Node.Attach;

/// <summary>
/// NBD in user space, for nodes without the nbd kernel module: nbdfuse exposes the export as a file on FUSE
/// (through a local nbdkit proxy that does the TLS-PSK), and a direct-io loop device turns that file into a
/// block device. Detach is the reverse: loop, FUSE, then wait for nbdfuse to exit.
/// </summary>
public sealed class NbdFuseAttacher(LoopDevices loops, IMounter mounter, IProcessRunner runner, DaemonLauncher launcher,
    ILogger<NbdFuseAttacher> logger) : IBlockAttacher
{
    public string Kind => "nbdfuse";
    public IReadOnlyList<string> RequiredTools { get; } = ["nbdfuse", "fusermount3", "losetup"];

    private static string FuseDir(string source) => Path.Combine(source, "fuse");
    private static string FuseFile(string source) => Path.Combine(FuseDir(source), "disk");
    private static string PidFile(string source) => Path.Combine(source, "nbdfuse.pid");

    public async Task<string?> FindAttachedAsync(string source, CancellationToken ct)
    {
        var bound = await loops.FindByBackingFileAsync(FuseFile(source), ct);
        if (bound.Count > 1)
            throw Core.Errors.CsiErrors.Internal($"{source} is attached more than once ({string.Join(", ", bound.Select(b => b.Name))}); refusing to guess");
        return bound.Count == 1 ? bound[0].Name : null;
    }

    public async Task<string> AttachAsync(string source, bool readOnly, CancellationToken ct)
    {
        if (await FindAttachedAsync(source, ct) is { } existing) return existing;
        if (!await FuseMountedAsync(source, ct))
        {
            var endpoint = NbdClientDirectory.Read(source);
            await StopNbdFuseAsync(source, ct);
            Directory.CreateDirectory(FuseDir(source));
            await launcher.StartAsync("nbdfuse", FuseArguments(source, endpoint), PidFile(source), Path.Combine(source, "nbdfuse.log"),
                TimeSpan.FromSeconds(15), ct);
        }
        if (new FileInfo(FuseFile(source)) is not { Exists: true, Length: > 0 })
            throw Core.Errors.CsiErrors.Internal($"the NBD export behind {source} shows no data (size 0); refusing to use it");
        return await loops.AttachAsync(FuseFile(source), readOnly, ct);
    }

    public static IReadOnlyList<string> FuseArguments(string source, NbdEndpoint endpoint)
    {
        var args = new List<string>();
        if (endpoint.ReadOnly) args.Add("--readonly");
        args.AddRange(["--pidfile", PidFile(source), FuseFile(source), "--socket-activation"]);
        args.AddRange(NbdClientDirectory.ProxyArguments(source, endpoint));
        return args;
    }

    public async Task DetachAsync(string device, string source, CancellationToken ct)
    {
        if ((await loops.FindByBackingFileAsync(FuseFile(source), ct)).Any(d => d.Name == device))
            await loops.DetachAsync(device, FuseFile(source), ct);
        else if (await OrphanedAsync(device, source, ct))
        {
            logger.LogWarning("{Device}, recorded for {Source}, is bound to a FUSE file whose nbdfuse is gone; detaching it", device, source);
            await loops.DetachAsync(device, ct);
        }
        if (await FuseMountedAsync(source, ct))
            await runner.RunAsync("fusermount3", ["-u", FuseDir(source)], ct, TimeSpan.FromSeconds(30));
        await StopNbdFuseAsync(source, ct);
    }

    /// <summary>
    /// The device this attachment recorded, left bound to a dead FUSE file that no path reaches any more: nbdfuse died
    /// with the pod that ran it and the mount namespace the device was bound in is gone, so the kernel names the file
    /// only "/disk" and cannot stat it. Nothing else can be bound to the device while it is, so it is ours to release —
    /// an unstage that left it would answer OK with the device still taken.
    /// </summary>
    private async Task<bool> OrphanedAsync(string device, string source, CancellationToken ct) =>
        device.Length > 0 && SolarCsi.Node.Devices.FileIdentity.TryKeyOf(FuseFile(source)) is null &&
        (await loops.ListAsync(ct)).FirstOrDefault(d => d.Name == device) is { } loop &&
        loop.BackingFile == "/" + Path.GetFileName(FuseFile(source));

    private async Task StopNbdFuseAsync(string source, CancellationToken ct)
    {
        if (Pid.Read(PidFile(source)) is { } pid && Pid.IsRunning(pid, "nbdfuse", PidFile(source)))
        {
            // nbdfuse exits by itself 1-2.5 s after its FUSE mount goes away; a stuck one is killed.
            await Pid.StopAsync(pid, kill: false, TimeSpan.FromSeconds(5), ct, "nbdfuse", PidFile(source));
            logger.LogDebug("nbdfuse {Pid} for {Source} stopped", pid, source);
        }
        if (File.Exists(PidFile(source))) File.Delete(PidFile(source));
    }

    private async Task<bool> FuseMountedAsync(string source, CancellationToken ct) =>
        (await mounter.ListAsync(ct)).TopAt(FuseDir(source)) is { } top && top.FsType.StartsWith("fuse", StringComparison.Ordinal);

    public async Task<string?> CheckAsync(string device, string source, CancellationToken ct)
    {
        if (!(Pid.Read(PidFile(source)) is { } pid && Pid.IsRunning(pid, "nbdfuse", PidFile(source)))) return "nbdfuse is not running";
        if (!await FuseMountedAsync(source, ct)) return "the FUSE view of the export is not mounted";
        if (await FindAttachedAsync(source, ct) != device) return $"{device} is no longer bound to the export";
        var endpoint = NbdClientDirectory.Read(source);
        if (SolarCsi.Node.Nbd.ProxyConnection.FindChildProxy(pid, NbdClientDirectory.PskPath(source)) is not { } proxy) return "nbdfuse's NBD client is not running";
        return SolarCsi.Node.Nbd.ProxyConnection.Problem(proxy, endpoint.Host, endpoint.Port);
    }

    /// <summary>The FUSE file's size is fixed when nbdfuse connects; a grown export needs a re-stage.</summary>
    public Task RefreshCapacityAsync(string device, CancellationToken ct) => loops.RefreshCapacityAsync(device, ct);
}
