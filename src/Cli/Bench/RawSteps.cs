using SolarCsi.Node.Devices;
using SolarCsi.Node.Mounts;
using SolarCsi.Node.Processes;
using SolarCsi.Node.Staging;

namespace SolarCsi.Cli;

/// <summary>
/// The OS commands the node plugin runs for a volume, run directly. The argument lists come from the driver's own
/// builders (LoopDevices, Filesystems, LinuxMounter, StagedFilesystem), so the raw side can never drift from what the
/// driver executes; what it leaves out is everything else the driver does around them (journal writes, mountinfo
/// and losetup reads, the blkid probe before mkfs, the gRPC call).
/// </summary>
internal sealed class RawSteps(IProcessRunner runner)
{
    public async Task<string> AttachLoopAsync(string file) =>
        (await runner.RunAsync("losetup", LoopDevices.AttachArguments(file, readOnly: false), CancellationToken.None)).StandardOutput.Trim();

    public Task FormatAsync(string device, string fsType)
    {
        var (program, args) = Filesystems.FormatCommand(device, fsType);
        return runner.RunAsync(program, args, CancellationToken.None, Filesystems.MkfsTimeout);
    }

    public Task MountAsync(string device, string directory, string fsType) =>
        runner.RunAsync("mount", LinuxMounter.MountArguments(device, directory, fsType, StagedFilesystem.MountOptions(fsType, [], readOnly: false)), CancellationToken.None);

    public Task MountTmpfsAsync(string source, string directory, long bytes) =>
        runner.RunAsync("mount", LinuxMounter.MountArguments(source, directory, "tmpfs", [$"size={bytes}", "mode=0755"]), CancellationToken.None);

    public Task BindAsync(string source, string target) =>
        runner.RunAsync("mount", LinuxMounter.MountArguments(source, target, null, ["bind"]), CancellationToken.None);

    public Task UnmountAsync(string target) => runner.RunAsync("umount", [target], CancellationToken.None);

    public Task UnmountFuseAsync(string directory) =>
        runner.RunAsync("fusermount3", ["-u", directory], CancellationToken.None, TimeSpan.FromSeconds(30));

    public Task DetachLoopAsync(string device) => runner.RunAsync("losetup", ["--detach", device], CancellationToken.None);

    // The four kubelet steps as the raw cycles run them, shared so file, NBD and tmpfs differ only where the media do.

    /// <summary>Attach <paramref name="file"/> as a loop device, format it, mount it at the staging path; returns the device.</summary>
    public async Task<string> StageFileAsync(string file, string staging, string fsType)
    {
        var device = await AttachLoopAsync(file);
        await FormatAsync(device, fsType);
        await MountAsync(device, staging, fsType);
        return device;
    }

    public async Task UnstageDeviceAsync(string staging, string device)
    {
        await UnmountAsync(staging);
        await DetachLoopAsync(device);
    }

    public async Task PublishAsync(string staging, string target)
    {
        Directory.CreateDirectory(target);
        await BindAsync(staging, target);
    }

    public async Task UnpublishAsync(string target)
    {
        await UnmountAsync(target);
        Directory.Delete(target);
    }
}
