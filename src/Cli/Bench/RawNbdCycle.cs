using SolarCsi.Node.Attach;
using SolarCsi.Node.Nbd;
using SolarCsi.Node.Processes;

namespace SolarCsi.Cli;

/// <summary>
/// An NBD volume without the node plugin: the export is made by the driver (CreateVolume and ControllerPublish,
/// untimed, as for the driver's side), then the bench runs what the node's nbdfuse attach path runs — nbdfuse with
/// the same local TLS-PSK proxy (`nbdkit nbd … tls=require`), started the same way and ready when it writes its pid
/// file — then losetup, mkfs and mount; and back: umount, losetup --detach, fusermount3 -u, and waiting for nbdfuse
/// to exit.
/// </summary>
internal sealed class RawNbdCycle(RawSteps os, DaemonLauncher launcher, DriverVolume export, string dir, string fsType) : IStageCycle
{
    private string FuseDir => Path.Combine(dir, "fuse");
    private string FuseFile => Path.Combine(FuseDir, "disk");
    private string PidFile => Path.Combine(dir, "nbdfuse.pid");
    private string Staging => Path.Combine(dir, "globalmount");
    private string Target => Path.Combine(dir, "pod", "mount");
    private NbdEndpoint? _endpoint;
    private string? _device;
    private int _nbdfuse;

    public async Task PrepareAsync()
    {
        await export.CreateAsync();
        await export.ControllerPublishAsync();
        var connection = export.Cluster.ConnectionOf(export.VolumeId, export.PublishContext);
        // The connection details and the key, as the node keeps them (0600 key file), written before timing starts.
        await NbdClientDirectory.WriteAsync(dir, connection, CancellationToken.None);
        _endpoint = NbdClientDirectory.Read(dir);
        Directory.CreateDirectory(FuseDir);
        Directory.CreateDirectory(Staging);
        Directory.CreateDirectory(Path.GetDirectoryName(Target)!);
    }

    public async Task StageAsync()
    {
        _nbdfuse = await launcher.StartAsync("nbdfuse", NbdFuseAttacher.FuseArguments(dir, _endpoint!), PidFile, Path.Combine(dir, "nbdfuse.log"),
            TimeSpan.FromSeconds(15), CancellationToken.None);
        _device = await os.StageFileAsync(FuseFile, Staging, fsType);
    }

    public Task PublishAsync() => os.PublishAsync(Staging, Target);

    public Task UnpublishAsync() => os.UnpublishAsync(Target);

    public async Task UnstageAsync()
    {
        await os.UnstageDeviceAsync(Staging, _device!);
        await os.UnmountFuseAsync(FuseDir);
        // nbdfuse leaves by itself a moment after its FUSE mount goes; the driver stops it the same way.
        await Pid.StopAsync(_nbdfuse, kill: false, TimeSpan.FromSeconds(5), CancellationToken.None);
    }

    public async Task CleanUpAsync()
    {
        if (export.VolumeId.Length > 0)
        {
            await export.ControllerUnpublishAsync();
            await export.DeleteAsync();
        }
        if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
    }
}
